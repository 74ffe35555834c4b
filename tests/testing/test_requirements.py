"""Tests for loading requirement files and matching executions to them."""

from __future__ import annotations

import pathlib
import random
import re
import string
import textwrap
from typing import Any

import pytest

from durable_exec.testing._requirements import (
    Requirement,
    load_requirements,
    match_history,
    match_logs,
    match_result,
    substitute,
)

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED_REQUIREMENTS = REPO_ROOT.parent / "shared/conformance/requirements"

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f:1/durable-execution/x"

MINIMAL = """\
description: d
handler: h
ExpectedResult:
  ExecutionStatus: SUCCEEDED
ExpectedExecutionHistory:
  - EventType: InvocationCompleted
    EventId: 2
"""


def write(root: pathlib.Path, suite: str, rid: str, text: str) -> None:
    """Write one requirement file under ``root/suite``."""
    folder = root / suite
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{rid}.yaml").write_text(textwrap.dedent(text))


def load_one(tmp_path: pathlib.Path, text: str, seed: int = 0) -> Requirement:
    """Load a single requirement written from ``text``."""
    write(tmp_path, "step", "1-1", text)
    (requirement,) = load_requirements(tmp_path, rng=random.Random(seed))
    return requirement


def event(event_id: int, **fields: Any) -> dict[str, Any]:
    """An actual history event with an EventId and a timestamp."""
    return {"EventId": event_id, "EventTimestamp": 1.5, **fields}


def log(**fields: Any) -> dict[str, Any]:
    """A log line of the execution under test."""
    return {"durableExecutionArn": ARN, **fields}


# --- loading -----------------------------------------------------------------


def test_id_suite_and_path_come_from_the_file_location(
    tmp_path: pathlib.Path,
) -> None:
    """The id is the file stem and the suite is its folder."""
    write(tmp_path, "child", "3-12", MINIMAL)

    (requirement,) = load_requirements(tmp_path)

    assert requirement.id == "3-12"
    assert requirement.suite == "child"
    assert requirement.path == tmp_path / "child" / "3-12.yaml"
    assert requirement.description == "d"
    assert requirement.handler == "h"


def test_requirements_sort_by_suite_then_numerically_by_id(
    tmp_path: pathlib.Path,
) -> None:
    """Ids sort number by number, so 1-2 comes before 1-10."""
    for rid in ("1-10", "1-2", "1-1", "2-1"):
        write(tmp_path, "step", rid, MINIMAL)
    write(tmp_path, "callback", "4-3", MINIMAL)
    (tmp_path / "step" / "notes.txt").write_text("not a requirement")

    found = [(r.suite, r.id) for r in load_requirements(tmp_path)]

    assert found == [
        ("callback", "4-3"),
        ("step", "1-1"),
        ("step", "1-2"),
        ("step", "1-10"),
        ("step", "2-1"),
    ]


def test_suites_argument_limits_the_suites_loaded(
    tmp_path: pathlib.Path,
) -> None:
    """Only the named suites are loaded."""
    write(tmp_path, "step", "1-1", MINIMAL)
    write(tmp_path, "wait", "2-1", MINIMAL)

    found = [r.suite for r in load_requirements(tmp_path, ["wait"])]

    assert found == ["wait"]


def test_unknown_suite_raises_naming_it_and_the_known_ones(
    tmp_path: pathlib.Path,
) -> None:
    """An unknown suite is a ValueError that lists the known suites."""
    write(tmp_path, "step", "1-1", MINIMAL)
    write(tmp_path, "wait", "2-1", MINIMAL)

    with pytest.raises(ValueError, match=r"'stepz'.*step, wait"):
        load_requirements(tmp_path, ["step", "stepz"])


def test_missing_directory_raises_file_not_found(
    tmp_path: pathlib.Path,
) -> None:
    """A directory that does not exist is reported as such."""
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_requirements(tmp_path / "nowhere")


def test_file_may_start_with_a_document_marker(
    tmp_path: pathlib.Path,
) -> None:
    """A leading '---' and comments do not stop the file from loading."""
    requirement = load_one(tmp_path, "---\n# 1.1: title\n" + MINIMAL)

    assert requirement.expected_status == "SUCCEEDED"
    assert requirement.expected_history == (
        {"EventType": "InvocationCompleted", "EventId": 2},
    )


def test_file_that_is_not_a_mapping_raises(tmp_path: pathlib.Path) -> None:
    """A file holding a list is rejected with its path in the message."""
    with pytest.raises(ValueError, match="1-1.yaml"):
        load_one(tmp_path, "- 1\n- 2\n")


def test_bad_execution_status_raises(tmp_path: pathlib.Path) -> None:
    """An ExecutionStatus other than SUCCEEDED or FAILED is rejected."""
    with pytest.raises(ValueError, match="'DONE'"):
        load_one(tmp_path, "ExpectedResult:\n  ExecutionStatus: DONE\n")


def test_absent_fields_take_their_defaults(tmp_path: pathlib.Path) -> None:
    """Without Input, ExpectedResult and the rest, fields are empty."""
    requirement = load_one(tmp_path, "description: d\n")

    assert requirement.input is None
    assert requirement.expected_status is None
    assert requirement.has_expected_result is False
    assert requirement.expected_history == ()
    assert requirement.callback_actions == ()
    assert requirement.expected_logs == ()
    assert requirement.async_invoke is False
    assert dict(requirement.variables) == {}


def test_bare_result_key_expects_none(tmp_path: pathlib.Path) -> None:
    """'Result:' with nothing after it means a None result is expected."""
    requirement = load_one(
        tmp_path,
        "Input:\nExpectedResult:\n  ExecutionStatus: SUCCEEDED\n  Result:\n",
    )

    assert requirement.input is None
    assert requirement.has_expected_result is True
    assert requirement.expected_result is None


def test_async_invoke_is_read(tmp_path: pathlib.Path) -> None:
    """AsyncInvoke: true sets async_invoke."""
    requirement = load_one(tmp_path, MINIMAL + "AsyncInvoke: true\n")

    assert requirement.async_invoke is True


def test_unquoted_dates_stay_strings(tmp_path: pathlib.Path) -> None:
    """YAML dates are kept as text, because inputs are JSON values."""
    requirement = load_one(tmp_path, "Input:\n  day: 2026-01-01\n")

    assert requirement.input == {"day": "2026-01-01"}


def test_gen_str_has_the_length_and_alphabet_asked_for(
    tmp_path: pathlib.Path,
) -> None:
    """${GEN_STR:N} becomes N lowercase letters and digits."""
    requirement = load_one(
        tmp_path, "Variables:\n  A: ${GEN_STR:8}\n  B: ${GEN_STR:30}\n"
    )

    alphabet = set(string.ascii_lowercase + string.digits)
    assert len(requirement.variables["A"]) == 8
    assert len(requirement.variables["B"]) == 30
    assert set(requirement.variables["B"]) <= alphabet


def test_gen_str_is_fresh_on_every_load(tmp_path: pathlib.Path) -> None:
    """Two loads from one generator draw different strings."""
    write(tmp_path, "step", "1-1", "Variables:\n  A: ${GEN_STR:12}\n")
    rng = random.Random(7)

    first = load_requirements(tmp_path, rng=rng)[0].variables["A"]
    second = load_requirements(tmp_path, rng=rng)[0].variables["A"]

    assert first != second


def test_gen_str_is_repeatable_with_a_seeded_generator(
    tmp_path: pathlib.Path,
) -> None:
    """The same seed gives the same strings."""
    write(tmp_path, "step", "1-1", "Variables:\n  A: ${GEN_STR:12}\n")

    first = load_requirements(tmp_path, rng=random.Random(3))
    second = load_requirements(tmp_path, rng=random.Random(3))

    assert first[0].variables == second[0].variables


def test_variables_are_substituted_everywhere_they_are_used(
    tmp_path: pathlib.Path,
) -> None:
    """Input, result, callbacks, history and logs all get the values."""
    requirement = load_one(
        tmp_path,
        """\
        Variables:
          NAME: ${GEN_STR:6}
          GREETING: hi ${NAME}
        Input: ['${NAME}', 1]
        ExpectedResult:
          ExecutionStatus: SUCCEEDED
          Result: Hello, ${NAME}!
        CallbackActions:
          - CallbackName: ${NAME}
            Operation: success
            Payload: {id: '${NAME}'}
        ExpectedExecutionHistory:
          - EventId: 2
            Id: ${ID1}
            Name: ${NAME}
            Payload: '"${NAME}"'
        ExpectedLogs:
          - match:
              message: '/running for: ${NAME}/'
        """,
    )
    name = requirement.variables["NAME"]

    assert requirement.variables["GREETING"] == f"hi {name}"
    assert requirement.input == [name, 1]
    assert requirement.expected_result == f"Hello, {name}!"
    assert requirement.callback_actions[0]["CallbackName"] == name
    assert requirement.callback_actions[0]["Payload"] == {"id": name}
    assert requirement.expected_history[0] == {
        "EventId": 2,
        "Id": "${ID1}",
        "Name": name,
        "Payload": f'"{name}"',
    }
    assert requirement.expected_logs[0]["match"] == {
        "message": f"/running for: {name}/"
    }
    assert requirement.raw["Input"] == ["${NAME}", 1]


# --- substitute --------------------------------------------------------------


def test_substitute_replaces_known_names_in_nested_values() -> None:
    """Known names are replaced in strings at any depth; others stay."""
    value = {"a": ["${X}", {"b": "x=${X}, y=${Y}"}], "${X}": 3}

    result = substitute(value, {"X": "v"})

    assert result == {"a": ["v", {"b": "x=v, y=${Y}"}], "${X}": 3}
    assert value["a"] == ["${X}", {"b": "x=${X}, y=${Y}"}]


def test_substitute_escapes_values_inside_a_regex() -> None:
    """Inside ${/re/} a value is inserted so it matches literally."""
    assert substitute("${/^${X}$/}", {"X": "a.b"}) == r"${/^a\.b$/}"


# --- match_history -----------------------------------------------------------


def test_matching_history_gives_no_messages() -> None:
    """A history that satisfies every rule matches."""
    expected = [
        {"EventType": "StepStarted", "EventId": 2, "Id": "${ID1}"},
        {"EventType": "StepSucceeded", "EventId": 3, "Id": "${ID1}"},
    ]
    actual = [
        event(1, EventType="ExecutionStarted"),
        event(2, EventType="StepStarted", Id="abc", Extra=1),
        event(3, EventType="StepSucceeded", Id="abc"),
        event(4, EventType="InvocationCompleted"),
    ]

    assert match_history(expected, actual) == []


def test_events_are_pinned_by_event_id() -> None:
    """An expected event is compared with the event carrying its EventId."""
    expected = [{"EventId": 3, "EventType": "StepSucceeded"}]
    actual = [
        event(1, EventType="ExecutionStarted"),
        event(2, EventType="StepSucceeded"),
        event(3, EventType="StepFailed"),
    ]

    assert match_history(expected, actual) == [
        "event 3 EventType: expected 'StepSucceeded', got 'StepFailed'"
    ]


def test_events_without_event_id_are_found_by_position() -> None:
    """Actual events lacking EventId are numbered from 1 in order."""
    expected = [{"EventId": 2, "EventType": "StepStarted"}]
    actual = [{"EventType": "ExecutionStarted"}, {"EventType": "StepStarted"}]

    assert match_history(expected, actual) == []


def test_missing_event_is_reported_with_the_history_length() -> None:
    """An EventId beyond the history is a missing event."""
    expected = [{"EventId": 7, "EventType": "InvocationCompleted"}]
    actual = [event(i) for i in range(1, 7)]

    assert match_history(expected, actual) == ["event 7 missing (history has 6 events)"]


def test_listed_key_must_be_present() -> None:
    """A key the event lacks is reported with its path."""
    expected = [{"EventId": 2, "StepFailedDetails": {"Error": "*"}}]
    actual = [event(1), event(2, StepFailedDetails={})]

    problems = match_history(expected, actual)

    assert problems == ["event 2 StepFailedDetails.Error: key missing (expected '*')"]


def test_star_accepts_any_value_but_needs_the_key() -> None:
    """'*' matches None and mappings, yet not an absent key."""
    expected = [{"EventId": 2, "A": "*", "B": "*"}, {"EventId": 3, "A": "*"}]
    actual = [event(1), event(2, A=None, B={"x": 1}), event(3)]

    assert match_history(expected, actual) == ["event 3 A: key missing (expected '*')"]


def test_empty_mapping_accepts_any_mapping_only() -> None:
    """{} matches any mapping, but not a string or an absent key."""
    expected = [
        {"EventId": 2, "Details": {}},
        {"EventId": 3, "Details": {}},
        {"EventId": 4, "Details": {}},
    ]
    actual = [
        event(1),
        event(2, Details={"Result": {"Payload": "x"}}),
        event(3, Details="text"),
        event(4),
    ]

    problems = match_history(expected, actual)

    assert problems == [
        "event 3 Details: expected a mapping, got 'text'",
        "event 4 Details: key missing (expected {})",
    ]


def test_name_binds_first_value_and_must_repeat() -> None:
    """${NAME} binds on first sight, then a different value is reported."""
    expected = [
        {"EventId": 2, "Id": "${ID1}"},
        {"EventId": 3, "Id": "${ID1}"},
    ]
    actual = [event(1), event(2, Id="a"), event(3, Id="b")]
    bindings: dict[str, Any] = {}

    problems = match_history(expected, actual, bindings)

    assert problems == [
        "event 3 Id: expected ${ID1} = 'a' (bound at event 2 Id), got 'b'"
    ]
    assert bindings == {"ID1": "a"}


def test_two_names_may_bind_the_same_value() -> None:
    """Distinct names are not required to bind distinct values."""
    expected = [{"EventId": 2, "Id": "${A}", "ParentId": "${B}"}]
    actual = [event(1), event(2, Id="same", ParentId="same")]

    assert match_history(expected, actual) == []


def test_pre_bound_names_are_honoured() -> None:
    """A name bound before matching must equal the actual value."""
    expected = [{"EventId": 2, "Name": "${CB}"}]
    actual = [event(1), event(2, Name="other")]

    problems = match_history(expected, actual, {"CB": "mine"})

    message = (
        "event 2 Name: expected ${CB} = 'mine' (bound before matching), got 'other'"
    )
    assert problems == [message]


def test_bound_value_compares_with_number_rules() -> None:
    """A name bound to 1 accepts 1.0 later, but not True."""
    expected = [
        {"EventId": 2, "N": "${N}"},
        {"EventId": 3, "N": "${N}"},
        {"EventId": 4, "N": "${N}"},
    ]
    actual = [event(1), event(2, N=1), event(3, N=1.0), event(4, N=True)]

    problems = match_history(expected, actual)

    assert len(problems) == 1
    assert problems[0].startswith("event 4 N:")


def test_regex_searches_the_value_text() -> None:
    """${/re/} searches strings, number text and JSON bool text."""
    expected = [
        {"EventId": 2, "Delay": "${/^[0-5]$/}", "Type": "${/Transient/}"},
        {"EventId": 3, "Flag": "${/^true$/}", "Delay": "${/^[0-5]$/}"},
    ]
    actual = [
        event(1),
        event(2, Delay=4, Type="app.TransientError"),
        event(3, Flag=True, Delay=7),
    ]

    problems = match_history(expected, actual)

    assert problems == ["event 3 Delay: expected a match for ${/^[0-5]$/}, got 7"]


def test_numbers_compare_as_numbers_but_bools_are_not_numbers() -> None:
    """1 equals 1.0, while True and 1 differ in both directions."""
    expected = [
        {"EventId": 2, "A": 1, "B": 1, "C": True},
    ]
    actual = [event(1), event(2, A=1.0, B=True, C=1)]

    problems = match_history(expected, actual)

    assert problems == [
        "event 2 B: expected 1, got True",
        "event 2 C: expected True, got 1",
    ]


def test_strings_compare_exactly() -> None:
    """A string matches only the identical string, not a number."""
    expected = [{"EventId": 2, "Payload": '"x"', "Code": "5"}]
    actual = [event(1), event(2, Payload="x", Code=5)]

    problems = match_history(expected, actual)

    assert problems == [
        "event 2 Payload: expected '\"x\"', got 'x'",
        "event 2 Code: expected '5', got 5",
    ]


def test_lists_need_the_same_length_and_matching_items() -> None:
    """Lists of another length, or with a differing item, are reported."""
    expected = [
        {"EventId": 2, "L": [1, "*"]},
        {"EventId": 3, "L": [1, {"k": "v"}]},
    ]
    actual = [event(1), event(2, L=[1, 2, 3]), event(3, L=[1, {"k": "w"}])]

    problems = match_history(expected, actual)

    assert problems == [
        "event 2 L: expected 2 items, got 3: [1, 2, 3]",
        "event 3 L[1].k: expected 'v', got 'w'",
    ]


def test_nested_mismatch_names_the_full_key_path() -> None:
    """A message names the event and the dotted path to the value."""
    expected = [
        {
            "EventId": 5,
            "StepFailedDetails": {"RetryDetails": {"CurrentAttempt": 1}},
        }
    ]
    actual = [event(i) for i in range(1, 5)] + [
        event(5, StepFailedDetails={"RetryDetails": {"CurrentAttempt": 2}})
    ]

    message = "event 5 StepFailedDetails.RetryDetails.CurrentAttempt: expected 1, got 2"
    assert match_history(expected, actual) == [message]


def test_text_mixed_with_a_name_binds_the_rest() -> None:
    """'prefix-${X}' binds X to the text after the prefix."""
    expected = [
        {"EventId": 2, "Name": "item-${X}"},
        {"EventId": 3, "Name": "${X}"},
        {"EventId": 4, "Name": "item-${X}"},
    ]
    actual = [
        event(1),
        event(2, Name="item-a.b"),
        event(3, Name="a.b"),
        event(4, Name="item-aXb"),
    ]
    bindings: dict[str, Any] = {}

    problems = match_history(expected, actual, bindings)

    assert bindings == {"X": "a.b"}
    assert problems == ["event 4 Name: expected 'item-a.b', got 'item-aXb'"]


def test_event_without_event_id_is_reported() -> None:
    """An expected event must say which EventId it is pinned to."""
    problems = match_history([{"EventType": "StepStarted"}], [event(1)])

    assert len(problems) == 1
    assert "no integer EventId" in problems[0]


def test_invalid_regex_raises_value_error() -> None:
    """A regex that does not compile is a broken requirement."""
    with pytest.raises(ValueError, match="invalid regular expression"):
        match_history([{"EventId": 1, "A": "${/(/}"}], [event(1, A="x")])


# --- match_result ------------------------------------------------------------


RESULT_FILE = """\
ExpectedResult:
  ExecutionStatus: SUCCEEDED
"""


def test_status_must_equal_the_expected_status(
    tmp_path: pathlib.Path,
) -> None:
    """A different status is reported and the result is not compared."""
    requirement = load_one(tmp_path, RESULT_FILE + "  Result: ok\n")

    problems = match_result(requirement, "FAILED", None)

    assert problems == ["execution status: expected 'SUCCEEDED', got 'FAILED'"]


def test_absent_result_accepts_any_result(tmp_path: pathlib.Path) -> None:
    """Without a Result key only the status is checked."""
    requirement = load_one(tmp_path, RESULT_FILE)

    assert match_result(requirement, "SUCCEEDED", {"any": "thing"}) == []


def test_null_result_requires_none(tmp_path: pathlib.Path) -> None:
    """A bare Result: expects None and rejects any other value."""
    requirement = load_one(tmp_path, RESULT_FILE + "  Result:\n")

    assert match_result(requirement, "SUCCEEDED", None) == []
    assert match_result(requirement, "SUCCEEDED", "") == [
        "result: expected None, got ''"
    ]


def test_mapping_result_must_have_exactly_the_listed_keys(
    tmp_path: pathlib.Path,
) -> None:
    """A result mapping matches by value; a missing or extra key fails."""
    requirement = load_one(
        tmp_path,
        RESULT_FILE + "  Result:\n    count: 2\n    id: '${/^[a-z]+$/}'\n",
    )

    assert match_result(requirement, "SUCCEEDED", {"count": 2.0, "id": "ab"}) == []
    assert match_result(requirement, "SUCCEEDED", {"count": 2}) == [
        "result id: key missing (expected '${/^[a-z]+$/}')"
    ]
    extra = match_result(requirement, "SUCCEEDED", {"count": 2, "id": "ab", "more": 1})
    assert len(extra) == 1
    assert "unexpected keys ['more']" in extra[0]


def test_result_not_compared_when_the_execution_failed(
    tmp_path: pathlib.Path,
) -> None:
    """A FAILED requirement checks only the status."""
    requirement = load_one(tmp_path, "ExpectedResult:\n  ExecutionStatus: FAILED\n")

    assert match_result(requirement, "FAILED", None) == []
    assert match_result(requirement, "SUCCEEDED", None) == [
        "execution status: expected 'FAILED', got 'SUCCEEDED'"
    ]


def test_status_unchecked_without_expected_result(
    tmp_path: pathlib.Path,
) -> None:
    """A file without ExpectedResult accepts any status."""
    requirement = load_one(tmp_path, "AsyncInvoke: true\n")

    assert match_result(requirement, "RUNNING", None) == []


# --- match_logs --------------------------------------------------------------


def test_only_lines_of_the_execution_count() -> None:
    """Lines of other executions are ignored; executionArn also counts."""
    entries = [{"match": {"hook": "start"}, "count": 2}]
    lines = [
        log(hook="start"),
        {"executionArn": ARN, "hook": "start"},
        {"durableExecutionArn": "other", "hook": "start"},
        {"hook": "start"},
    ]

    assert match_logs(entries, lines, ARN) == []


def test_count_is_exact() -> None:
    """count: N fails for any other number of matching lines."""
    entries = [{"match": {"hook": "start"}, "count": 1}]

    problems = match_logs(entries, [log(hook="start")] * 2, ARN)

    message = (
        "ExpectedLogs[0] {'hook': 'start'}: expected exactly 1 matching line, found 2"
    )
    assert problems == [message]


def test_count_zero_forbids_matching_lines() -> None:
    """count: 0 passes with no matching line and fails with one."""
    entries = [{"match": {"first": False}, "count": 0}]

    assert match_logs(entries, [log(first=True)], ARN) == []
    assert len(match_logs(entries, [log(first=False)], ARN)) == 1


def test_default_requires_at_least_one_line() -> None:
    """Without counts an entry needs one or more matching lines."""
    entries = [{"match": {"hook": "start"}}]

    assert match_logs(entries, [log(hook="start")] * 3, ARN) == []
    message = (
        "ExpectedLogs[0] {'hook': 'start'}: expected at least 1 matching line, found 0"
    )
    assert match_logs(entries, [log(hook="end")], ARN) == [message]


def test_min_and_max_count_bound_the_number_of_lines() -> None:
    """min_count and max_count are inclusive bounds."""
    entries = [{"match": {"hook": "a"}, "min_count": 2, "max_count": 3}]

    assert len(match_logs(entries, [log(hook="a")] * 1, ARN)) == 1
    assert match_logs(entries, [log(hook="a")] * 2, ARN) == []
    assert match_logs(entries, [log(hook="a")] * 3, ARN) == []
    assert len(match_logs(entries, [log(hook="a")] * 4, ARN)) == 1


def test_slash_value_is_a_regex_and_bools_are_not_numbers() -> None:
    """'/re/' searches the field; first: true does not match 1."""
    entries = [
        {"match": {"message": "/running for: ab1/"}, "count": 1},
        {"match": {"first": True}, "count": 1},
    ]
    lines = [
        log(message="Greeting step running for: ab12"),
        log(first=1),
        log(first=True),
        log(other="running for: ab1"),
    ]

    assert match_logs(entries, lines, ARN) == []


def test_after_needs_some_earlier_line_for_each_matching_line() -> None:
    """Each line of an 'after' entry must follow a line matching X."""
    entries = [
        {
            "match": {"hook": "attempt-start"},
            "count": 2,
            "after": [{"hook": "invocation-start"}],
        }
    ]
    good = [
        log(hook="invocation-start"),
        log(hook="attempt-start"),
        log(hook="attempt-start"),
    ]
    bad = [
        log(hook="attempt-start"),
        log(hook="invocation-start"),
        log(hook="attempt-start"),
    ]

    assert match_logs(entries, good, ARN) == []
    problems = match_logs(entries, bad, ARN)
    assert len(problems) == 1
    assert "line 0" in problems[0]
    assert "does not come after" in problems[0]


def test_after_fails_when_nothing_matches_the_reference() -> None:
    """An 'after' reference that matches no line is reported."""
    entries = [{"match": {"hook": "end"}, "after": [{"hook": "start"}]}]

    problems = match_logs(entries, [log(hook="end")], ARN)

    assert len(problems) == 1
    assert "no line matches that" in problems[0]


def test_before_needs_some_later_line() -> None:
    """Each line of a 'before' entry must precede a line matching X."""
    entries = [{"match": {"hook": "start"}, "before": [{"hook": "end"}]}]

    ordered = [log(hook="start"), log(hook="end")]
    reversed_ = [log(hook="end"), log(hook="start")]

    assert match_logs(entries, ordered, ARN) == []
    assert len(match_logs(entries, reversed_, ARN)) == 1


def test_names_bound_by_the_history_are_used_in_log_matches() -> None:
    """op: ${ID1} uses the history's binding; an unbound name is reported."""
    entries = [
        {"match": {"op": "${ID1}", "n": 1}, "count": 1},
        {"match": {"message": "/op ${ID1} done/"}, "count": 1},
    ]
    lines = [
        log(op="a.1", n=1),
        log(op="other", n=1),
        log(message="op a.1 done"),
        log(message="op aX1 done"),
    ]

    assert match_logs(entries, lines, ARN, {"ID1": "a.1"}) == []
    problems = match_logs(entries, lines, ARN)
    assert len(problems) == 2
    assert all("${ID1} is not bound" in p for p in problems)


def test_entry_without_match_raises() -> None:
    """An entry with no match mapping cannot be evaluated."""
    with pytest.raises(ValueError, match="match"):
        match_logs([{"count": 1}], [], ARN)


def test_unsupported_entry_key_is_reported() -> None:
    """A key match_logs does not know is reported, not ignored."""
    entries = [{"match": {"hook": "a"}, "within": 5}]

    problems = match_logs(entries, [log(hook="a")], ARN)

    assert problems == ["ExpectedLogs[0] {'hook': 'a'}: unsupported keys ['within']"]


# --- the shared requirement files --------------------------------------------


def test_every_shared_requirement_file_loads() -> None:
    """Each shared file parses into a Requirement with something to check."""
    if not SHARED_REQUIREMENTS.is_dir():
        pytest.skip(f"no shared requirements at {SHARED_REQUIREMENTS}")

    requirements = load_requirements(SHARED_REQUIREMENTS, rng=random.Random(0))
    on_disk = sorted(SHARED_REQUIREMENTS.glob("*/*.yaml"))

    assert len(requirements) == len(on_disk) > 0
    for requirement in requirements:
        assert isinstance(requirement, Requirement)
        assert re.fullmatch(r"\d+-\d+", requirement.id), requirement.path
        assert (
            requirement.expected_history
            or requirement.async_invoke
            or requirement.expected_logs
        ), requirement.path
        assert requirement.expected_status in ("SUCCEEDED", "FAILED") or (
            requirement.async_invoke
        ), requirement.path
        for name, value in requirement.variables.items():
            assert "${" not in value, (requirement.path, name)
        leftover = [
            name
            for name in requirement.variables
            if f"${{{name}}}"
            in repr(
                (
                    requirement.input,
                    requirement.expected_result,
                    requirement.expected_history,
                    requirement.callback_actions,
                    requirement.expected_logs,
                )
            )
        ]
        assert leftover == [], requirement.path
