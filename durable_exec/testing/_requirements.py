"""Load conformance requirement files and match executions against them.

A requirement file (see ``shared/conformance/README.md``) describes one
handler, the event it receives, and what the service must record: the
execution's status and result, the events of its history, and sometimes
the JSON log lines its invocations print. This module turns each file into
a :class:`Requirement` and checks an observed execution against it.

Matching never raises on a difference: each ``match_*`` function returns a
list of human-readable messages, empty when everything matches, so a test
can show every difference at once. A malformed requirement (a bad regular
expression, a negative count) raises :class:`ValueError` instead, because
no execution could satisfy it.

The value rules shared by history, result and log matching:

- ``'*'`` accepts any value; the key must still be present.
- ``{}`` accepts any mapping. A non-empty mapping needs every listed key;
  extra keys in the actual value are fine (except in a result, below).
- ``'${NAME}'`` binds ``NAME`` to the first value it meets; every later
  ``'${NAME}'`` must equal that value. Bindings are shared by all events
  of a history, and names bound before matching are honoured.
- ``'${/re/}'`` is :func:`re.search` of ``re`` in the value's text: a
  string as is, ``true``/``false``/``null`` for JSON literals, JSON for
  lists and mappings, ``str()`` for anything else (numbers, datetimes).
- A string mixing text and placeholders (``'prefix-${X}'``) must match the
  whole actual string: bound names stand for their value's text, unbound
  names capture text and bind it, ``${/re/}`` stands for ``re``.
- Any other string compares exactly. Lists need the same length and match
  item by item. Numbers compare as numbers (``1 == 1.0``), but a bool is
  never a number. ``None`` matches only ``None``.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import random
import re
import reprlib
import string
import types
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, Final

import attrs
import yaml

__all__ = [
    "Requirement",
    "load_requirements",
    "match_history",
    "match_logs",
    "match_result",
    "substitute",
]

_STATUSES: Final = frozenset({"SUCCEEDED", "FAILED"})
_GEN_STR_ALPHABET: Final = string.ascii_lowercase + string.digits

# ${GEN_STR:N} inside a Variables value.
_GEN_STR: Final = re.compile(r"\$\{GEN_STR:(\d+)\}")

# One placeholder inside a string: ${/regex/} or ${NAME}. The regex body is
# non-greedy so that 'a${/x/}b${/y/}' holds two regexes, not one.
_TOKEN: Final = re.compile(
    r"\$\{(?:/(?P<regex>.*?)/|(?P<name>[A-Za-z_][A-Za-z0-9_]*))\}", re.DOTALL
)
_WHOLE_REGEX: Final = re.compile(r"\$\{/(?P<regex>.*)/\}", re.DOTALL)
_WHOLE_NAME: Final = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")

_LOG_ENTRY_KEYS: Final = frozenset(
    {"match", "count", "min_count", "max_count", "before", "after"}
)
_ARN_FIELDS: Final = ("durableExecutionArn", "executionArn")

_repr = reprlib.Repr()
_repr.maxstring = 200
_repr.maxother = 120
_repr.maxlevel = 3
_repr.maxdict = 6
_repr.maxlist = 6


@attrs.frozen
class Requirement:
    """One requirement file, with its Variables already substituted.

    Attributes:
        id: The file's stem, such as ``"1-18"`` for ``step/1-18.yaml``.
        suite: The folder the file is in, such as ``"step"``.
        path: Where the file was read from.
        description: The one-line ``description``.
        handler: The prose saying what the handler under test does.
        input: The event the handler receives (``None`` when absent).
        variables: Each Variables name with its concrete value; a
            ``${GEN_STR:N}`` is expanded afresh on every load.
        expected_status: ``"SUCCEEDED"`` or ``"FAILED"``, or ``None`` when
            the file has no ``ExpectedResult`` (an execution that is left
            suspended, such as a long wait).
        has_expected_result: Whether ``ExpectedResult`` has a ``Result``
            key. A bare ``Result:`` is present and expects ``None``.
        expected_result: The expected result; meaningful only when
            ``has_expected_result`` is true.
        expected_history: The ``ExpectedExecutionHistory`` events.
        callback_actions: The ``CallbackActions``, in file order.
        async_invoke: Whether the execution needs something from outside
            to finish (``AsyncInvoke``, or the older ``async`` key).
        expected_logs: The ``ExpectedLogs`` entries; Variables inside a
            ``/regex/`` value are substituted regex-escaped.
        raw: The parsed file, before any substitution.
    """

    id: str
    suite: str
    path: pathlib.Path
    description: str
    handler: str
    input: Any
    variables: Mapping[str, str]
    expected_status: str | None
    has_expected_result: bool
    expected_result: Any
    expected_history: tuple[Mapping[str, Any], ...]
    callback_actions: tuple[Mapping[str, Any], ...]
    async_invoke: bool
    expected_logs: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any]


# -----------------------------------------------------------------------------
# Loading


class _JsonLoader(yaml.SafeLoader):
    """A safe loader that leaves dates and times as strings.

    Requirement values are JSON values; plain YAML would turn an unquoted
    ``2026-01-01`` into a :class:`datetime.date`, which no JSON payload
    can hold.
    """


_JsonLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag != "tag:yaml.org,2002:timestamp"
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_requirements(
    directory: str | os.PathLike[str],
    suites: Sequence[str] | None = None,
    *,
    rng: random.Random | None = None,
) -> list[Requirement]:
    """Load every requirement file of the given suites.

    Each suite is a folder of ``directory``; every ``*.yaml`` file directly
    in it is one requirement. The result is sorted by suite name, then by
    id compared number by number (``1-2`` before ``1-10``).

    Args:
        directory: The folder holding one folder per suite.
        suites: The suite names to load; all suites when ``None``.
        rng: The source of ``${GEN_STR:N}`` strings. Every load draws
            fresh strings; pass a seeded generator for repeatable values.

    Returns:
        The requirements, in order.

    Raises:
        FileNotFoundError: If ``directory`` is not a folder.
        ValueError: If a suite name is unknown, or a file is malformed.
    """
    root = pathlib.Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"requirements directory {str(root)!r} does not exist")
    known = sorted(p.name for p in root.iterdir() if p.is_dir())

    if suites is None:
        chosen = known
    else:
        if isinstance(suites, str):
            suites = [suites]
        unknown = [s for s in suites if s not in known]
        if unknown:
            raise ValueError(
                f"unknown suite {unknown[0]!r}; known suites are " + ", ".join(known)
            )
        chosen = sorted(set(suites))

    rng = rng if rng is not None else random.Random()
    paths = [
        path
        for suite in chosen
        for path in sorted((root / suite).glob("*.yaml"), key=lambda p: _id_key(p.stem))
        if path.is_file()
    ]
    return [_load_one(path, rng) for path in paths]


def _id_key(requirement_id: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key comparing the dash-separated parts of an id as numbers."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in requirement_id.split("-")
    )


def _load_one(path: pathlib.Path, rng: random.Random) -> Requirement:
    """Parse one requirement file and substitute its Variables."""
    with path.open(encoding="utf-8") as stream:
        raw = yaml.load(stream, Loader=_JsonLoader)
    if not isinstance(raw, dict):
        raise ValueError(
            f"requirement file {str(path)!r} must hold a mapping "
            f"(got {type(raw).__name__})"
        )

    variables = _expand_variables(raw.get("Variables"), path, rng)

    expected = raw.get("ExpectedResult")
    if expected is None:
        expected = {}
    if not isinstance(expected, dict):
        raise ValueError(
            f"ExpectedResult in {str(path)!r} must be a mapping (got {expected!r})"
        )
    status = expected.get("ExecutionStatus")
    if status is not None and status not in _STATUSES:
        raise ValueError(
            f"ExpectedResult.ExecutionStatus in {str(path)!r} must be one "
            f"of {sorted(_STATUSES)} (got {status!r})"
        )

    history = _mapping_list(raw, "ExpectedExecutionHistory", path)
    actions = _mapping_list(raw, "CallbackActions", path)
    logs = _mapping_list(raw, "ExpectedLogs", path)
    for index, entry in enumerate(logs):
        _check_log_entry(entry, index)

    async_invoke = raw.get("AsyncInvoke", raw.get("async", False))
    return Requirement(
        id=path.stem,
        suite=path.parent.name,
        path=path,
        description=str(raw.get("description") or ""),
        handler=str(raw.get("handler") or ""),
        input=substitute(raw.get("Input"), variables),
        variables=types.MappingProxyType(variables),
        expected_status=status,
        has_expected_result="Result" in expected,
        expected_result=substitute(expected.get("Result"), variables),
        expected_history=tuple(substitute(history, variables)),
        callback_actions=tuple(substitute(actions, variables)),
        async_invoke=bool(async_invoke),
        expected_logs=tuple(_substitute(logs, variables, slash_regex=True)),
        raw=raw,
    )


def _expand_variables(
    spec: Any, path: pathlib.Path, rng: random.Random
) -> dict[str, str]:
    """Give each Variables name a concrete string value.

    A value may use names defined above it, so ``B: ${A}-x`` works.
    """
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise ValueError(f"Variables in {str(path)!r} must be a mapping (got {spec!r})")

    def generate(match: re.Match[str]) -> str:
        length = int(match.group(1))
        return "".join(rng.choice(_GEN_STR_ALPHABET) for _ in range(length))

    variables: dict[str, str] = {}
    for name, value in spec.items():
        text = _GEN_STR.sub(generate, _text(value))
        variables[str(name)] = substitute(text, variables)
    return variables


def _mapping_list(
    raw: Mapping[str, Any], key: str, path: pathlib.Path
) -> list[dict[str, Any]]:
    """Return ``raw[key]`` as a list of mappings (empty when absent)."""
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(
            f"{key} in {str(path)!r} must be a list of mappings "
            f"(got {_repr.repr(value)})"
        )
    return value


# -----------------------------------------------------------------------------
# Substitution


def substitute(value: Any, variables: Mapping[str, str]) -> Any:
    """Replace ``${NAME}`` for each Variables name inside ``value``.

    Strings are rewritten wherever they sit in lists and mapping values;
    mapping keys are left alone (no requirement file puts a placeholder
    in a key). Names not in ``variables`` are left for matching to bind.
    Inside a ``${/regex/}`` the value is inserted regex-escaped, so it
    matches literally.

    Args:
        value: A JSON-like value: mappings, lists, strings and scalars.
        variables: The names to replace, with their values.

    Returns:
        A copy of ``value`` with the names replaced; ``value`` itself is
        not changed.
    """
    return _substitute(value, variables, slash_regex=False)


def _substitute(value: Any, variables: Mapping[str, str], *, slash_regex: bool) -> Any:
    """Substitute recursively; ``slash_regex`` marks ``'/re/'`` strings."""
    if isinstance(value, str):
        return _substitute_text(value, variables, slash_regex=slash_regex)
    if isinstance(value, Mapping):
        return {
            key: _substitute(item, variables, slash_regex=slash_regex)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_substitute(item, variables, slash_regex=slash_regex) for item in value]
    return value


def _substitute_text(
    text: str, variables: Mapping[str, str], *, slash_regex: bool
) -> str:
    """Substitute the known names in one string."""
    if not variables or "${" not in text:
        return text

    def plain(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is None or name not in variables:
            return match.group(0)
        return variables[name]

    def escaped(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is None or name not in variables:
            return match.group(0)
        return re.escape(variables[name])

    whole = _WHOLE_REGEX.fullmatch(text)
    if whole is not None:
        return "${/" + _TOKEN.sub(escaped, whole.group("regex")) + "/}"
    if slash_regex and _is_slash_regex(text):
        return _TOKEN.sub(escaped, text)
    return _TOKEN.sub(plain, text)


def _is_slash_regex(text: str) -> bool:
    """Whether a log match value is a ``'/regex/'``."""
    return len(text) >= 2 and text.startswith("/") and text.endswith("/")


# -----------------------------------------------------------------------------
# Value matching


def _text(value: Any) -> str:
    """The text a regex is searched in: JSON text, ``str()`` otherwise."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, list, tuple, Mapping)):
        return json.dumps(value, default=str)
    return str(value)


def _is_number(value: Any) -> bool:
    """Whether ``value`` is an int or float, but not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(left: Any, right: Any) -> bool:
    """Deep equality where a bool is never equal to a number."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and (left == right)
    if _is_number(left) or _is_number(right):
        return _is_number(left) and _is_number(right) and left == right
    if isinstance(left, Mapping) or isinstance(right, Mapping):
        return (
            isinstance(left, Mapping)
            and isinstance(right, Mapping)
            and left.keys() == right.keys()
            and all(_same(left[k], right[k]) for k in left)
        )
    if isinstance(left, (list, tuple)) or isinstance(right, (list, tuple)):
        return (
            isinstance(left, (list, tuple))
            and isinstance(right, (list, tuple))
            and len(left) == len(right)
            and all(_same(a, b) for a, b in zip(left, right))
        )
    return bool(left == right)


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    """Compile a regex from a requirement, naming it when it is invalid."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"invalid regular expression {pattern!r} in requirement: {exc}"
        ) from None


def _show(value: Any) -> str:
    """A short repr for messages."""
    return _repr.repr(value)


class _Matcher:
    """Compares expected values with actual ones, collecting messages.

    Args:
        bindings: The ``${NAME}`` bindings, updated in place.
        strict_mappings: Reject keys the expected mapping does not list,
            and read ``{}`` as an empty mapping (used for results).
        slash_regex: Read a ``'/re/'`` string as a regex (log matching).
    """

    def __init__(
        self,
        bindings: MutableMapping[str, Any],
        *,
        strict_mappings: bool = False,
        slash_regex: bool = False,
    ) -> None:
        self.bindings = bindings
        self.strict_mappings = strict_mappings
        self.slash_regex = slash_regex
        self.problems: list[str] = []
        # Where each name was bound, to point at it in a mismatch message.
        self.origins: dict[str, str] = {name: "before matching" for name in bindings}

    def compare(self, expected: Any, actual: Any, where: str) -> None:
        """Append a message for each difference under ``where``."""
        if isinstance(expected, str):
            self._compare_text(expected, actual, where)
        elif isinstance(expected, Mapping):
            self._compare_mapping(expected, actual, where)
        elif isinstance(expected, (list, tuple)):
            self._compare_list(expected, actual, where)
        elif not _same(expected, actual):
            self._differ(where, expected, actual)

    def _differ(self, where: str, expected: Any, actual: Any) -> None:
        self.problems.append(
            f"{where}: expected {_show(expected)}, got {_show(actual)}"
        )

    def _compare_mapping(
        self, expected: Mapping[str, Any], actual: Any, where: str
    ) -> None:
        if not isinstance(actual, Mapping):
            self.problems.append(f"{where}: expected a mapping, got {_show(actual)}")
            return
        for key, value in expected.items():
            if key not in actual:
                self.problems.append(
                    f"{_join(where, key)}: key missing (expected {_show(value)})"
                )
            else:
                self.compare(value, actual[key], _join(where, key))
        if self.strict_mappings:
            extra = [key for key in actual if key not in expected]
            if extra:
                self.problems.append(
                    f"{where}: unexpected keys {extra!r} in {_show(actual)}"
                )

    def _compare_list(self, expected: Sequence[Any], actual: Any, where: str) -> None:
        if not isinstance(actual, (list, tuple)):
            self.problems.append(
                f"{where}: expected a list of {len(expected)} items, "
                f"got {_show(actual)}"
            )
            return
        if len(actual) != len(expected):
            self.problems.append(
                f"{where}: expected {len(expected)} items, got "
                f"{len(actual)}: {_show(actual)}"
            )
            return
        for index, (item, got) in enumerate(zip(expected, actual)):
            self.compare(item, got, f"{where}[{index}]")

    def _compare_text(self, expected: str, actual: Any, where: str) -> None:
        if expected == "*":
            return

        if self.slash_regex and _is_slash_regex(expected):
            pattern = self._bound_pattern(expected[1:-1], where)
            if pattern is not None and not _compile(pattern).search(_text(actual)):
                self.problems.append(
                    f"{where}: expected a match for /{pattern}/, got {_show(actual)}"
                )
            return

        whole_regex = _WHOLE_REGEX.fullmatch(expected)
        if whole_regex is not None:
            pattern = whole_regex.group("regex")
            if not _compile(pattern).search(_text(actual)):
                self.problems.append(
                    f"{where}: expected a match for {expected}, got {_show(actual)}"
                )
            return

        whole_name = _WHOLE_NAME.fullmatch(expected)
        if whole_name is not None:
            self._bind_or_compare(whole_name.group("name"), actual, where)
            return

        if "${" in expected and _TOKEN.search(expected):
            self._compare_template(expected, actual, where)
            return

        if not (isinstance(actual, str) and actual == expected):
            self._differ(where, expected, actual)

    def _bind_or_compare(self, name: str, actual: Any, where: str) -> None:
        if name not in self.bindings:
            self.bindings[name] = actual
            self.origins[name] = f"at {where}"
        elif not _same(self.bindings[name], actual):
            self.problems.append(
                f"{where}: expected ${{{name}}} = "
                f"{_show(self.bindings[name])} (bound "
                f"{self.origins.get(name, 'before matching')}), "
                f"got {_show(actual)}"
            )

    def _bound_pattern(self, pattern: str, where: str) -> str | None:
        """Put bound names, escaped, into a ``'/re/'`` log pattern."""
        unbound: list[str] = []

        def replace(match: re.Match[str]) -> str:
            name = match.group("name")
            if name is None:
                return match.group(0)
            if name not in self.bindings:
                unbound.append(name)
                return match.group(0)
            return re.escape(_text(self.bindings[name]))

        result = _TOKEN.sub(replace, pattern)
        if unbound:
            self.problems.append(
                f"{where}: ${{{unbound[0]}}} is not bound (bind it in the "
                "history first)"
            )
            return None
        return result

    def _compare_template(self, expected: str, actual: Any, where: str) -> None:
        """Match text mixed with placeholders against a whole string."""
        if not isinstance(actual, str):
            self._differ(where, expected, actual)
            return

        # Build one regex: literal text escaped, bound names as their text,
        # unbound names as captures (a name used twice must repeat), and
        # ${/re/} as a group of its own.
        parts: list[str] = []
        groups: dict[str, str] = {}
        position = 0
        for token in _TOKEN.finditer(expected):
            parts.append(re.escape(expected[position : token.start()]))
            position = token.end()
            name = token.group("name")
            if name is None:
                parts.append(f"(?:{token.group('regex')})")
            elif name in self.bindings:
                parts.append(re.escape(_text(self.bindings[name])))
            elif name in groups:
                parts.append(f"(?P={groups[name]})")
            else:
                groups[name] = f"g{len(groups)}"
                parts.append(f"(?P<{groups[name]}>.*?)")
        parts.append(re.escape(expected[position:]))

        found = _compile("".join(parts)).fullmatch(actual)
        if found is None:
            shown = _TOKEN.sub(
                lambda t: (
                    _text(self.bindings[t.group("name")])
                    if t.group("name") in self.bindings
                    else t.group(0)
                ),
                expected,
            )
            self._differ(where, shown, actual)
            return
        for name, group in groups.items():
            self.bindings[name] = found.group(group)
            self.origins[name] = f"at {where}"


def _join(where: str, key: Any) -> str:
    """Extend a location by a key.

    The first key follows the subject after a space (``event 5 Name``);
    later keys follow a dot (``event 5 Error.Payload``).
    """
    subject, _, path = where.partition(" ")
    if subject == "event":
        # 'event 5' is the subject; its keys start after the id.
        number, _, path = path.partition(" ")
        subject = f"event {number}"
    if not path:
        return f"{subject} {key}"
    return f"{where}.{key}"


# -----------------------------------------------------------------------------
# History


def match_history(
    expected: Sequence[Mapping[str, Any]],
    actual: Sequence[Mapping[str, Any]],
    bindings: MutableMapping[str, Any] | None = None,
) -> list[str]:
    """Match an execution history against the expected events.

    Each expected event is found by its ``EventId`` in ``actual``: the
    actual event carrying that ``EventId``, or, for an event without one,
    the event at that 1-based position. Events not listed are not checked.
    Within an event the value rules of this module apply, and
    ``${NAME}`` bindings carry from one event to the next in the order
    the expected events are listed.

    Args:
        expected: The expected events, Variables already substituted.
        actual: The events in ``GetDurableExecutionHistory`` shape.
        bindings: Names bound before matching; updated in place with the
            names the history binds. A fresh mapping when ``None``.

    Returns:
        One message per difference, such as ``event 5
        StepFailedDetails.RetryDetails.CurrentAttempt: expected 1, got
        2``; empty when the history matches.
    """
    matcher = _Matcher(bindings if bindings is not None else {})

    by_id: dict[int, Mapping[str, Any]] = {}
    for position, event in enumerate(actual, start=1):
        if "EventId" not in event:
            event = {**event, "EventId": position}
        event_id = event["EventId"]
        if isinstance(event_id, int) and not isinstance(event_id, bool):
            by_id.setdefault(event_id, event)

    for index, event in enumerate(expected):
        event_id = event.get("EventId")
        if not isinstance(event_id, int) or isinstance(event_id, bool):
            matcher.problems.append(
                f"expected event #{index} has no integer EventId ({_show(event)})"
            )
            continue
        found = by_id.get(event_id)
        if found is None:
            matcher.problems.append(
                f"event {event_id} missing (history has {len(actual)} events)"
            )
            continue
        matcher.compare(event, found, f"event {event_id}")
    return matcher.problems


# -----------------------------------------------------------------------------
# Result


def match_result(
    requirement: Requirement,
    status: str,
    result: Any,
    bindings: MutableMapping[str, Any] | None = None,
) -> list[str]:
    """Match an execution's status and result against a requirement.

    The status must equal ``requirement.expected_status`` (not checked
    when the file has no ``ExpectedResult``). The result is compared only
    when the file lists a ``Result`` and the execution succeeded. The
    value rules of this module apply, with one difference: the result is
    the handler's whole return value, so a mapping in it must have
    exactly the listed keys, and ``{}`` means an empty mapping.

    Args:
        requirement: The requirement to check.
        status: The execution's status, such as ``"SUCCEEDED"``.
        result: The JSON-decoded execution result (``None`` for none).
        bindings: ``${NAME}`` bindings, such as those of the history;
            updated in place. A fresh mapping when ``None``.

    Returns:
        One message per difference; empty when status and result match.
    """
    problems: list[str] = []
    expected_status = requirement.expected_status
    if expected_status is not None and status != expected_status:
        problems.append(
            f"execution status: expected {expected_status!r}, got {status!r}"
        )
    if requirement.has_expected_result and status == "SUCCEEDED":
        matcher = _Matcher(
            bindings if bindings is not None else {}, strict_mappings=True
        )
        matcher.compare(requirement.expected_result, result, "result")
        problems.extend(matcher.problems)
    return problems


# -----------------------------------------------------------------------------
# Logs


def match_logs(
    expected_logs: Sequence[Mapping[str, Any]],
    lines: Sequence[Mapping[str, Any]],
    execution_arn: str,
    bindings: MutableMapping[str, Any] | None = None,
) -> list[str]:
    """Match JSON log lines against ``ExpectedLogs`` entries.

    Only lines whose ``durableExecutionArn`` or ``executionArn`` equals
    ``execution_arn`` count; the order of ``lines`` is the order the
    lines were printed in.

    A line matches a match-mapping when it has every listed field and
    each value matches: a ``'/re/'`` string is :func:`re.search` in the
    value's text, anything else follows the value rules of this module.
    ``${NAME}`` must already be bound (by the history); inside ``'/re/'``
    it stands for its value, regex-escaped.

    Each entry's lines, those matching its ``match``, are counted:
    ``count`` is exact, ``min_count`` and ``max_count`` are bounds, and
    with none of them at least one line must match.

    Ordering is read per line, as "happens after": with ``after: [X]``
    each line of the entry must come after at least one line matching
    ``X``, so a retry's second start only needs some earlier first end,
    not every end. ``before: [X]`` is the mirror: each line must come
    before at least one line matching ``X``. With several mappings in
    the list, the line must satisfy each of them. When no line of the
    entry matches, ordering holds trivially (the count speaks for it).

    Args:
        expected_logs: The entries, Variables already substituted.
        lines: The decoded JSON log lines, in print order.
        execution_arn: The ARN of the execution under test.
        bindings: Names bound by the history, such as operation ids.

    Returns:
        One message per difference; empty when every entry holds.

    Raises:
        ValueError: If an entry has no ``match`` mapping or a bad count.
    """
    bound: dict[str, Any] = dict(bindings) if bindings is not None else {}
    mine = [
        line
        for line in lines
        # A collector may hand over lines that were not JSON objects.
        if isinstance(line, Mapping)
        and any(line.get(field) == execution_arn for field in _ARN_FIELDS)
    ]
    problems: list[str] = []

    for index, entry in enumerate(expected_logs):
        _check_log_entry(entry, index)
        label = f"ExpectedLogs[{index}] {_show(entry['match'])}"

        unknown = sorted(set(entry) - _LOG_ENTRY_KEYS)
        if unknown:
            problems.append(f"{label}: unsupported keys {unknown!r}")

        unbound = _unbound_names(entry, bound)
        if unbound:
            problems.append(f"{label}: ${{{unbound[0]}}} is not bound by the history")
            continue

        hits = _matching_positions(entry["match"], mine, bound)
        problems.extend(_count_problems(entry, len(hits), label))

        for word in ("after", "before"):
            for pattern in _as_patterns(entry.get(word)):
                others = _matching_positions(pattern, mine, bound)
                problems.extend(
                    _order_problems(hits, others, mine, pattern, word, label)
                )
    return problems


def _check_log_entry(entry: Mapping[str, Any], index: int) -> None:
    """Raise if an ExpectedLogs entry cannot be evaluated at all."""
    if not isinstance(entry.get("match"), Mapping):
        raise ValueError(
            f"ExpectedLogs[{index}] needs a 'match' mapping "
            f"(got {_show(entry.get('match'))})"
        )
    for key in ("count", "min_count", "max_count"):
        value = entry.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise ValueError(
                f"ExpectedLogs[{index}].{key} must be an integer >= 0 (got {value!r})"
            )
    for key in ("after", "before"):
        value = entry.get(key)
        if value is not None and not all(
            isinstance(item, Mapping) for item in _as_list(value)
        ):
            raise ValueError(
                f"ExpectedLogs[{index}].{key} must be a list of match "
                f"mappings (got {_show(value)})"
            )


def _as_list(value: Any) -> list[Any]:
    """A single mapping as a one-item list; a list as itself."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    return list(value)


def _as_patterns(value: Any) -> list[Mapping[str, Any]]:
    """The match mappings of an ``after`` or ``before`` value."""
    return [item for item in _as_list(value) if isinstance(item, Mapping)]


def _unbound_names(value: Any, bound: Mapping[str, Any]) -> list[str]:
    """Names used in ``value``'s strings that ``bound`` lacks."""
    if isinstance(value, str):
        return [
            token.group("name")
            for token in _TOKEN.finditer(value)
            if token.group("name") and token.group("name") not in bound
        ]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _unbound_names(item, bound)]
    return []


def _matching_positions(
    pattern: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    bound: Mapping[str, Any],
) -> list[int]:
    """Indexes of the lines that match ``pattern``."""
    positions = []
    for position, line in enumerate(lines):
        # A copy, so that nothing a line binds leaks to the next line.
        matcher = _Matcher(dict(bound), slash_regex=True)
        matcher.compare(pattern, line, "line")
        if not matcher.problems:
            positions.append(position)
    return positions


def _count_problems(entry: Mapping[str, Any], found: int, label: str) -> list[str]:
    """Check the number of matching lines against the entry's counts."""
    count = entry.get("count")
    low = entry.get("min_count")
    high = entry.get("max_count")
    if count is None and low is None and high is None:
        low = 1

    problems = []
    if count is not None and found != count:
        problems.append(f"{label}: expected exactly {_lines(count)}, found {found}")
    if low is not None and found < low:
        problems.append(f"{label}: expected at least {_lines(low)}, found {found}")
    if high is not None and found > high:
        problems.append(f"{label}: expected at most {_lines(high)}, found {found}")
    return problems


def _lines(number: int) -> str:
    """``1 matching line``, ``2 matching lines``."""
    return f"{number} matching line" + ("" if number == 1 else "s")


def _order_problems(
    hits: Sequence[int],
    others: Sequence[int],
    lines: Sequence[Mapping[str, Any]],
    pattern: Mapping[str, Any],
    word: str,
    label: str,
) -> list[str]:
    """Check that each hit comes ``word`` (after/before) some other line."""
    if not hits:
        return []
    if not others:
        message = (
            f"{label}: its lines must come {word} a line matching "
            f"{_show(pattern)}, but no line matches that"
        )
        return [message]
    if word == "after":
        first = min(others)
        wrong = [hit for hit in hits if hit <= first]
    else:
        last = max(others)
        wrong = [hit for hit in hits if hit >= last]
    return [
        f"{label}: line {hit} {_show(lines[hit])} does not come {word} "
        f"any line matching {_show(pattern)}"
        for hit in wrong
    ]
