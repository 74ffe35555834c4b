"""The ``durable-exec`` command: run workflows on the embedded engine.

Subcommands:

* ``run FILE_OR_MODULE:HANDLER --input JSON``: run a durable handler to
  its end, printing one line per history event on stderr and the result
  on stdout. With ``--name``, running again resumes the execution of that
  name (after a crash, say) or prints its result if it has ended.
* ``callback succeed|fail|heartbeat CALLBACK_ID``: answer a callback as
  the system outside would, then resume its execution (when its handler
  can be loaded again), printing progress as ``run`` does.
* ``history NAME_OR_ARN``: the execution's operations as a tree; its
  history events with ``--format events`` or ``--json``; a timeline page
  with ``--format html``.
* ``list``: the executions in the store.
* ``serve FILE_OR_MODULE:HANDLER...``: serve the handlers and the
  engine over the Lambda durable execution REST API, for boto3 and any
  other client of it, until Ctrl-C.
* ``conformance ...``: the conformance suite, see
  :mod:`durable_exec.testing.conformance`.

Exit status: 0 when the execution succeeded, or still runs because it
waits for the outside world; 1 when it failed, timed out or was stopped;
2 for bad usage or input.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import enum
import json
import logging
import os
import re
import sqlite3
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, TextIO

import attrs

from .errors import DurableExecutionError
from .history import build_tree, format_tree, render_html
from .local import (
    DEFAULT_STORE_PATH,
    ExecutionRecord,
    ExecutionResult,
    ExecutionSummary,
    LocalEngine,
    MemoryStore,
    ServiceError,
    SqliteStore,
    Store,
)
from .wire import (
    ErrorObject,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
    to_wire,
)

__all__ = ["main"]

PROG = "durable-exec"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_FAILED_STATUSES = frozenset(
    {ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.STOPPED}
)
# Longest preview of a payload or message in a line of progress or history.
_PREVIEW_CHARS = 60


class _UsageError(Exception):
    """Bad usage the parser could not see; reported like a parser error."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``durable-exec`` command and return its exit status.

    Args:
        argv: the arguments after the program name; default
            ``sys.argv[1:]``.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)

    # The conformance suite parses its own arguments, all of them.
    if args_list[:1] == ["conformance"]:
        return _conformance(args_list[1:])

    parser = _parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:
        # --help, or a usage error argparse has already printed.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE

    try:
        result: int = args.command(args)
        return result
    except (_UsageError, DurableExecutionError) as error:
        _error(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as cat does.
        _silence_stdout()
        return EXIT_FAILED


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run durable functions on the embedded engine.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    store_help = (
        "the SQLite file that keeps executions, or ':memory:' "
        f"(default: {DEFAULT_STORE_PATH})"
    )

    run = commands.add_parser(
        "run",
        help="run a durable handler to its end",
        description=(
            "Run a durable handler on the embedded engine to its end. "
            "Progress goes to stderr, one line per history event; the "
            "result goes to stdout. Running again with the same --name "
            "resumes that execution, or prints its result if it has ended."
        ),
    )
    run.add_argument(
        "handler",
        metavar="FILE_OR_MODULE:HANDLER",
        help="the handler, e.g. samples/hello.py:handler or pkg.mod:handler",
    )
    run.add_argument(
        "--input",
        metavar="JSON",
        help=(
            "the execution's input as JSON (default: {} for a new "
            "execution, the input it started with for an existing one)"
        ),
    )
    run.add_argument(
        "--name",
        help="the execution's name; run again with it to resume",
    )
    run.add_argument("--store", metavar="PATH", help=store_help)
    run.add_argument(
        "--skip-time",
        action="store_true",
        help="jump over waits and retry delays instead of sleeping",
    )
    run.add_argument(
        "--subprocess",
        action="store_true",
        help="run each invocation in a fresh Python process",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help='print {"arn", "name", "status", "result", "error"} as JSON',
    )
    run.set_defaults(command=_run)

    callback = commands.add_parser(
        "callback",
        help="answer a callback, then resume its execution",
        description=(
            "Answer a callback as the system outside would: succeed or "
            "fail it, or send a heartbeat. After an answer the execution "
            "is resumed, if its handler can be loaded again, with progress "
            "on stderr and the result on stdout, as with 'run'."
        ),
    )
    answers = callback.add_subparsers(title="answers", metavar="ANSWER", required=True)
    succeed = answers.add_parser(
        "succeed",
        help="answer with a result",
        description="Answer a callback with a result, then resume.",
    )
    succeed.add_argument(
        "--result",
        metavar="JSON",
        help="the result, JSON text kept as given (default: no result)",
    )
    fail = answers.add_parser(
        "fail",
        help="answer with an error",
        description="Answer a callback with an error, then resume.",
    )
    fail.add_argument("--error-type", metavar="T", help="the error's type")
    fail.add_argument("--error-message", metavar="M", help="the error's message")
    heartbeat = answers.add_parser(
        "heartbeat",
        help="say the answer is still coming",
        description=(
            "Restart a callback's heartbeat timeout. Nothing is resumed: "
            "the callback still waits for its answer."
        ),
    )
    for answer, parser_ in (
        ("succeed", succeed),
        ("fail", fail),
        ("heartbeat", heartbeat),
    ):
        parser_.add_argument(
            "callback_id",
            metavar="CALLBACK_ID",
            help="the id from the CallbackStarted event",
        )
        parser_.add_argument("--store", metavar="PATH", help=store_help)
        if answer != "heartbeat":
            parser_.add_argument(
                "--skip-time",
                action="store_true",
                help="jump over waits and retry delays instead of sleeping",
            )
            parser_.add_argument(
                "--json",
                action="store_true",
                help='print {"arn", "name", "status", "result", "error"} as JSON',
            )
        parser_.set_defaults(command=_callback, answer=answer)

    history = commands.add_parser(
        "history",
        help="show an execution's operations and history events",
        description=(
            "Show what an execution did: its operations as a tree with "
            "status, attempts and durations (default), its history events, "
            "or a timeline page."
        ),
    )
    history.add_argument("execution", metavar="NAME_OR_ARN")
    history.add_argument("--store", metavar="PATH", help=store_help)
    history.add_argument(
        "--json",
        action="store_true",
        help="print the GetDurableExecutionHistory response as JSON",
    )
    history.add_argument(
        "--format",
        choices=("tree", "events", "html"),
        help=(
            "tree: operations under their parents (default); events: a "
            "row per history event; html: a self-contained timeline page"
        ),
    )
    history.add_argument(
        "--output", metavar="FILE", help="write to FILE instead of stdout"
    )
    history.set_defaults(command=_history)

    list_ = commands.add_parser(
        "list",
        help="list the executions in the store",
        description="List the executions in the store, oldest first.",
    )
    list_.add_argument("--store", metavar="PATH", help=store_help)
    list_.add_argument(
        "--json",
        action="store_true",
        help="print the ListDurableExecutionsByFunction response as JSON",
    )
    list_.set_defaults(command=_list)

    serve = commands.add_parser(
        "serve",
        help="serve handlers over the Lambda durable execution API",
        description=(
            "Serve durable handlers, and the engine that runs them, over "
            "the Lambda durable execution REST API: Invoke, the durable "
            "execution calls and the callback calls, as botocore sends "
            "them. Point a boto3 'lambda' client's endpoint_url at the URL "
            "printed on stdout. Each handler is served under the function "
            "name 'run' would give it (samples/hello.py:handler as "
            "hello-handler). Ctrl-C stops the server."
        ),
    )
    serve.add_argument(
        "handlers",
        nargs="+",
        metavar="FILE_OR_MODULE:HANDLER",
        help="the handlers to serve, e.g. samples/hello.py:handler",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1, this machine only)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=0,
        help="the port to listen on (default: 0, any free port)",
    )
    serve.add_argument("--store", metavar="PATH", help=store_help)
    serve.add_argument(
        "--skip-time",
        action="store_true",
        help=(
            "jump over waits and retry delays instead of sleeping "
            "(callback timeouts still take their time)"
        ),
    )
    serve.set_defaults(command=_serve)

    # Listed for --help only: main() hands these arguments over unparsed.
    commands.add_parser(
        "conformance",
        help="run the conformance suite (see 'conformance --help')",
        add_help=False,
    )
    return parser


# -- run ----------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    if args.subprocess and args.store == ":memory:":
        raise _UsageError(
            "--subprocess needs a store on disk; leave out --store or give "
            "a file path (got --store ':memory:')"
        )
    user_input = _parse_input(args.input)
    function_name = _function_name_for(args.handler)

    with _engine(args) as local, _module_path(args.handler):
        _register(local, function_name, args.handler)

        # A named execution that exists is resumed, or reported if it ended.
        existing = _find(local, function_name, args.name)
        seen = 0
        if existing is not None:
            record = local.engine.record(existing)
            stored_input = json.loads(record.input_payload)
            if args.input is not None and user_input != stored_input:
                raise _UsageError(
                    f"execution {args.name!r} exists with another input "
                    f"({_preview(record.input_payload)}); repeat its "
                    "--input, leave --input out, or choose another --name"
                )
            user_input = stored_input
            seen = len(record.events)
        elif user_input is _NO_INPUT:
            user_input = {}

        arn = local.start(function_name, user_input, name=args.name)
        record = local.engine.record(arn)
        progress = _Progress(sys.stderr, arn, record.start, seen=seen)
        if not args.subprocess and isinstance(local.store, _LiveCommits):
            local.store.listener = progress.committed
        if existing is None:
            progress.note(f"execution {record.name} of {function_name}")
        elif record.terminal:
            progress.note(f"execution {record.name} has ended; nothing to run")
        else:
            progress.note(f"resuming execution {record.name} after event {seen}")

        # User code prints to stdout; keep it off the result's stream.
        with redirect_stdout(sys.stderr), _workflow_logging():
            try:
                outcome = local.drive(arn, on_event=progress.event)
            except KeyboardInterrupt:
                progress.note(
                    f"interrupted; resume with: {PROG} run {args.handler} "
                    f"--name {record.name}"
                )
                return EXIT_INTERRUPTED

    return _report_run(outcome, args.json)


_NO_INPUT: Any = object()


def _parse_input(text: str | None) -> Any:
    if text is None:
        return _NO_INPUT
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _UsageError(f"--input must be JSON (got {text!r}: {error})") from None


def _function_name_for(ref: str) -> str:
    """The function name a handler reference is registered as.

    ``samples/hello.py:handler`` and ``samples.hello:handler`` both become
    ``hello-handler``: the file stem or last module name, then the
    attribute, with anything but letters, digits, ``-`` and ``_`` replaced.
    """
    target, _, attribute = ref.rpartition(":")
    if _is_file_ref(target):
        stem = Path(target).stem
    else:
        stem = target.rpartition(".")[2]
    name = re.sub(r"[^A-Za-z0-9_-]", "_", f"{stem}-{attribute}".strip("-"))
    return name[:64] or "handler"


def _is_file_ref(target: str) -> bool:
    # As load_handler tells a file from a module.
    return target.endswith(".py") or os.sep in target or "/" in target


@contextmanager
def _module_path(ref: str) -> Iterator[None]:
    """Let ``pkg.mod:handler`` import from the current directory.

    ``python -m`` puts the current directory on the path; the console
    script does not, so a module beside the user would not be found.
    """
    target = ref.rpartition(":")[0]
    cwd = os.getcwd()
    if _is_file_ref(target) or cwd in sys.path or "" in sys.path:
        yield
        return
    sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if cwd in sys.path:
            sys.path.remove(cwd)


def _register(local: LocalEngine, function_name: str, ref: str) -> None:
    try:
        local.register(function_name, ref)
    except DurableExecutionError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever the user's module raised
        # The user's module failed to import: say where, without our frames.
        frames = traceback.extract_tb(error.__traceback__)
        where = ""
        if frames and not isinstance(error, SyntaxError):
            where = f" at {frames[-1].filename}:{frames[-1].lineno}"
        detail = "".join(traceback.format_exception_only(error)).strip()
        raise _UsageError(f"cannot load handler {ref!r}{where}: {detail}") from None


def _find(local: LocalEngine, function_name: str, name: str | None) -> str | None:
    if name is None:
        return None
    arns = local.engine.find_arns(name=name, function_name=function_name)
    return arns[0] if arns else None


def _report_run(outcome: ExecutionResult, as_json: bool) -> int:
    result = _decoded(outcome.result_payload)
    error = to_wire(outcome.error) if outcome.error is not None else None
    if as_json:
        _print_json(
            {
                "arn": outcome.arn,
                "name": outcome.name,
                "status": outcome.status.value,
                "result": result,
                "error": error,
            }
        )
    else:
        status = outcome.status.value
        plural = "s" if outcome.invocations != 1 else ""
        summary = (
            f"{PROG}: execution {outcome.name} {status} after "
            f"{outcome.invocations} invocation{plural}"
        )
        if outcome.status is ExecutionStatus.RUNNING:
            summary += "; it waits for the outside world"
            for label, callback_id in _open_callbacks(outcome):
                summary += (
                    f"\n{PROG}: callback {label} waits for its answer; "
                    f"answer with: {PROG} callback succeed {callback_id} "
                    "--result JSON"
                )
        if outcome.error is not None:
            summary += f": {outcome.error.error_type or 'Error'}"
            if outcome.error.error_message:
                summary += f": {outcome.error.error_message}"
        print(summary, file=sys.stderr)
        if outcome.status is ExecutionStatus.SUCCEEDED:
            if isinstance(result, str) and result == outcome.result_payload:
                # Not JSON (a custom serdes): print it as checkpointed.
                print(result)
            else:
                print(json.dumps(result, indent=2))
    return EXIT_FAILED if outcome.status in _FAILED_STATUSES else EXIT_OK


def _open_callbacks(outcome: ExecutionResult) -> list[tuple[str, str]]:
    """The name (or id) and callback id of each callback of ``outcome``
    still waiting for its answer."""
    waiting = []
    for operation in outcome.operations:
        details = operation.callback_details
        if (
            operation.type is OperationType.CALLBACK
            and operation.status is OperationStatus.STARTED
            and details is not None
            and details.callback_id
        ):
            label = operation.name or operation.id
            waiting.append((label, details.callback_id))
    return waiting


def _decoded(payload: str | None) -> Any:
    if not payload:
        return None
    try:
        return json.loads(payload)
    except json.JSONDecodeError:
        return payload


@contextmanager
def _workflow_logging() -> Iterator[None]:
    """Show the workflow's ``context.logger`` lines, and our warnings."""
    handler = _StderrHandler()
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("      %(levelname)s %(message)s"))
    package = logging.getLogger("durable_exec")
    workflow = logging.getLogger("durable_exec.workflow")
    previous = workflow.level
    package.addHandler(handler)
    if workflow.getEffectiveLevel() > logging.INFO:
        workflow.setLevel(logging.INFO)
    try:
        yield
    finally:
        workflow.setLevel(previous)
        package.removeHandler(handler)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record comes."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - as logging.StreamHandler does
            self.handleError(record)


class _Progress:
    """Prints one line per history event, each once, in order."""

    def __init__(
        self, out: TextIO, arn: str, start: _dt.datetime, *, seen: int = 0
    ) -> None:
        self._out = out
        self._arn = arn
        # Stored timestamps keep whole milliseconds.
        self._start = start.replace(microsecond=start.microsecond // 1000 * 1000)
        self._last = seen

    def note(self, text: str) -> None:
        print(f"{PROG}: {text}", file=self._out, flush=True)

    def event(self, event: Mapping[str, Any]) -> None:
        if event["EventId"] <= self._last:
            return
        self._last = event["EventId"]
        row = _event_row(event, self._start)
        print(row.line(), file=self._out, flush=True)

    def committed(self, arn: str, event: Mapping[str, Any]) -> None:
        if arn == self._arn:
            self.event(event)


# -- callback -----------------------------------------------------------------


def _callback(args: argparse.Namespace) -> int:
    callback_id = args.callback_id
    result = None
    if args.answer == "succeed" and args.result is not None:
        try:
            json.loads(args.result)
        except json.JSONDecodeError as error:
            raise _UsageError(
                f"--result must be JSON (got {args.result!r}: {error})"
            ) from None
        result = args.result
    if not _store_exists(args.store):
        raise _UsageError(
            f"no callback has the id {callback_id!r}: the store "
            f"{str(_store_path(args.store))!r} does not exist"
        )

    with _engine(args) as local:
        # The execution to resume is the top one: a callback of a chained
        # invoke's target is driven along with its caller.
        found = local.store.find_callback(callback_id)
        root = local.engine.record(found[0]) if found else None
        while root is not None and root.parent_arn is not None:
            root = local.engine.record(root.parent_arn)
        seen = len(root.events) if root is not None else 0

        try:
            if args.answer == "succeed":
                local.send_callback_success(callback_id, result)
            elif args.answer == "fail":
                local.send_callback_failure(
                    callback_id,
                    ErrorObject(
                        error_type=args.error_type,
                        error_message=args.error_message,
                    ),
                )
            else:
                local.send_callback_heartbeat(callback_id)
        except ServiceError as error:
            raise _UsageError(error.message) from None
        # The engine found the callback, so it has an execution.
        assert root is not None

        progress = _Progress(sys.stderr, root.arn, root.start, seen=seen)
        if args.answer == "heartbeat":
            progress.note(
                f"heartbeat sent; callback {callback_id} still waits for its answer"
            )
            return EXIT_OK

        with _module_path(root.handler_ref or ""):
            if not _load_for_resume(local, root, progress):
                for event in local.engine.record(root.arn).events:
                    progress.event(event)
                return _report_run(local.describe(root.arn), args.json)
            if isinstance(local.store, _LiveCommits):
                local.store.listener = progress.committed
            progress.note(
                f"callback answered ({args.answer}); resuming execution "
                f"{root.name} after event {seen}"
            )
            with redirect_stdout(sys.stderr), _workflow_logging():
                try:
                    outcome = local.resume(root.arn, on_event=progress.event)
                except KeyboardInterrupt:
                    progress.note(
                        f"interrupted; resume with: {PROG} run "
                        f"{root.handler_ref} --name {root.name}"
                    )
                    return EXIT_INTERRUPTED
                except ServiceError as error:
                    # Another process drives it too, say; the answer stays.
                    raise _UsageError(
                        f"the answer is recorded, but execution {root.name} "
                        f"could not be resumed: {error.message}"
                    ) from None
    return _report_run(outcome, args.json)


def _load_for_resume(
    local: LocalEngine, record: ExecutionRecord, progress: _Progress
) -> bool:
    """Register the handler ``record`` was started from, if it loads.

    When it does not, the answer stays recorded and the execution waits
    for a ``run`` that names its handler; say so.
    """
    later = (
        f"the answer is recorded; execution {record.name} resumes when "
        f"its handler runs again: {PROG} run FILE_OR_MODULE:HANDLER "
        f"--name {record.name}"
    )
    if record.handler_ref is None:
        progress.note(f"{later} (its handler is not known here)")
        return False
    try:
        _register(local, record.function_name, record.handler_ref)
    except (_UsageError, DurableExecutionError) as error:
        progress.note(f"{later} ({error})")
        return False
    return True


# -- history ------------------------------------------------------------------


def _history(args: argparse.Namespace) -> int:
    if not _store_exists(args.store):
        raise _UsageError(
            f"no execution is named {args.execution!r}: the store "
            f"{str(_store_path(args.store))!r} does not exist"
        )
    if args.json and args.format is not None:
        raise _UsageError(
            "--json prints the events as JSON; leave out --format "
            f"(got --format {args.format})"
        )
    with _engine(args) as local:
        events = local.history(args.execution)

    with _history_output(args.output):
        if args.json:
            _print_json({"Events": [_jsonable(event) for event in events]})
        elif args.format == "events":
            start = events[0]["EventTimestamp"] if events else None
            rows = [_event_row(event, start) for event in events]
            _print_table(
                ("ID", "TIME", "TYPE", "OPERATION", "NAME", "DETAILS"),
                [row.cells() for row in rows],
            )
        elif args.format == "html":
            sys.stdout.write(render_html(build_tree(events)))
        else:
            sys.stdout.write(format_tree(build_tree(events)))
    if args.output is not None:
        print(f"{PROG}: wrote {args.output}", file=sys.stderr)
    return EXIT_OK


@contextmanager
def _history_output(path: str | None) -> Iterator[None]:
    """Send what ``history`` prints to the file at ``path``, if given."""
    if path is None:
        yield
        return
    try:
        file = open(path, "w", encoding="utf-8")
    except OSError as error:
        raise _UsageError(f"cannot write {path!r}: {error}") from None
    with file, redirect_stdout(file):
        yield


@attrs.frozen
class _EventRow:
    """One history event in a few words."""

    event_id: int
    offset: str
    event_type: str
    operation_id: str
    name: str
    details: str

    def cells(self) -> tuple[str, ...]:
        return (
            str(self.event_id),
            self.offset,
            self.event_type,
            self.operation_id,
            self.name,
            self.details,
        )

    def line(self) -> str:
        """The row as one line of progress."""
        text = (
            f"{self.event_id:>4}  {self.offset:>8}  {self.event_type:<20} "
            f"{self.operation_id:<6} {self.name:<16} {self.details}"
        )
        return text.rstrip()


def _event_row(event: Mapping[str, Any], start: _dt.datetime | None) -> _EventRow:
    event_type = str(event.get("EventType", ""))
    when = event.get("EventTimestamp")
    offset = ""
    if isinstance(when, _dt.datetime) and start is not None:
        offset = _format_offset(max(0.0, (when - start).total_seconds()))
    operation_id = str(event.get("Id", ""))
    name = str(event.get("Name", ""))
    if event_type.startswith("Execution"):
        # The EXECUTION operation is the execution: its id and name are
        # known, and long.
        operation_id = name = ""
    return _EventRow(
        int(event.get("EventId", 0)),
        offset,
        event_type,
        operation_id,
        name,
        _event_details(event_type, event.get(f"{event_type}Details") or {}),
    )


def _format_offset(seconds: float) -> str:
    if seconds < 60:
        return f"+{seconds:.3f}s"
    if seconds < 3600:
        minutes, seconds = divmod(seconds, 60)
        return f"+{int(minutes)}m{seconds:06.3f}s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"+{hours}h{minutes:02d}m{seconds:02d}s"
    days, hours = divmod(hours, 24)
    return f"+{days}d{hours:02d}h{minutes:02d}m"


def _event_details(event_type: str, details: Mapping[str, Any]) -> str:
    """A few words on an event: attempt, delay, duration, error."""
    parts: list[str] = []
    if event_type == "ExecutionStarted":
        payload = (details.get("Input") or {}).get("Payload")
        if payload is not None:
            parts.append(f"input {_preview(payload)}")
    if event_type == "CallbackStarted" and details.get("CallbackId"):
        parts.append(f"callback id {details['CallbackId']}")
    retry = details.get("RetryDetails") or {}
    if "CurrentAttempt" in retry:
        parts.append(f"attempt {retry['CurrentAttempt']}")
    if retry.get("NextAttemptDelaySeconds") is not None:
        parts.append(f"retry in {retry['NextAttemptDelaySeconds']} s")
    if details.get("Duration") is not None:
        parts.append(f"{details['Duration']} s")
    error = (details.get("Error") or {}).get("Payload") or {}
    if error:
        text = str(error.get("ErrorType") or "Error")
        # Whole-execution and invocation errors say why; show the message.
        if event_type.startswith(("Execution", "Invocation")):
            message = error.get("ErrorMessage")
            if message:
                text += f": {_preview(message)}"
        parts.append(text)
    return ", ".join(parts)


def _preview(text: str) -> str:
    text = " ".join(str(text).split())
    if len(text) <= _PREVIEW_CHARS:
        return text
    return text[: _PREVIEW_CHARS - 3] + "..."


# -- list ---------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    if not _store_exists(args.store):
        summaries = []
    else:
        with _engine(args) as local:
            summaries = local.list_executions()
    if args.json:
        listed = [_execution_json(summary) for summary in summaries]
        _print_json({"DurableExecutions": listed})
        return EXIT_OK

    if not summaries:
        print(f"{PROG}: no executions", file=sys.stderr)
        return EXIT_OK
    _print_table(
        ("NAME", "FUNCTION", "STATUS", "START", "END"),
        [
            (
                summary.name,
                summary.function_name,
                summary.status.value,
                _format_time(summary.start),
                _format_time(summary.end),
            )
            for summary in summaries
        ],
    )
    return EXIT_OK


def _execution_json(summary: ExecutionSummary) -> dict[str, Any]:
    """A ListDurableExecutionsByFunction entry, with ISO-8601 times."""
    function_arn = summary.arn.partition("/durable-execution/")[0]
    entry = {
        "DurableExecutionArn": summary.arn,
        "DurableExecutionName": summary.name,
        "FunctionArn": function_arn,
        "Status": summary.status.value,
        "StartTimestamp": summary.start,
        "EndTimestamp": summary.end,
    }
    return {key: _jsonable(value) for key, value in entry.items()}


def _format_time(moment: _dt.datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- serve --------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    # Imported here: the server loads botocore's model, which the other
    # commands do without.
    from .local import DurableExecutionServer

    names: dict[str, str] = {}
    for ref in args.handlers:
        name = _function_name_for(ref)
        if names.get(name, ref) != ref:
            raise _UsageError(
                f"{names[name]!r} and {ref!r} would both be served as "
                f"function {name!r}; serve them from differently named "
                "files or modules"
            )
        names[name] = ref
    if not 0 <= args.port <= 65535:
        raise _UsageError(f"--port must be 0 to 65535 (got {args.port})")

    store = ":memory:" if args.store == ":memory:" else _store_path(args.store)
    try:
        server = DurableExecutionServer(
            host=args.host, port=args.port, store=store, skip_time=args.skip_time
        )
    except (OSError, sqlite3.Error) as error:
        raise _UsageError(
            f"cannot serve on {args.host}:{args.port} with the store "
            f"{str(store)!r}: {error}"
        ) from None

    with ExitStack() as stack:
        stack.callback(server.close)
        for name, ref in names.items():
            stack.enter_context(_module_path(ref))
            # Loading through the runner first reports a broken module as
            # 'run' does; registering again reuses the loaded module.
            _register(server.local, name, ref)
            server.register(name, ref)

        print(server.url, flush=True)
        for name, ref in names.items():
            print(f"{PROG}: function {name} from {ref}", file=sys.stderr)
        print(f"{PROG}: serving at {server.url}; Ctrl-C stops", file=sys.stderr)
        sys.stderr.flush()

        # User code prints to stdout; keep it off the URL's stream.
        stack.enter_context(redirect_stdout(sys.stderr))
        stack.enter_context(_workflow_logging())
        stack.enter_context(_sigterm_interrupts())
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print(f"{PROG}: shutting down", file=sys.stderr, flush=True)
    return EXIT_OK


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Let SIGTERM stop the server as Ctrl-C does, where it can."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- conformance --------------------------------------------------------------


def _conformance(argv: list[str]) -> int:
    # Imported here: the suite is optional, and the rest of the command
    # must work without it.
    try:
        from .testing import conformance
    except ImportError as error:
        _error(f"the conformance suite is not available: {error}")
        return EXIT_USAGE
    status: object
    try:
        status = conformance.main(argv)
    except SystemExit as exit_:
        status = exit_.code
    except DurableExecutionError as error:
        _error(str(error))
        return EXIT_USAGE
    if status is None:
        return EXIT_OK
    return status if isinstance(status, int) else EXIT_USAGE


# -- shared -------------------------------------------------------------------


def _store_path(store: str | None) -> Path:
    return Path(store) if store is not None else DEFAULT_STORE_PATH


def _store_exists(store: str | None) -> bool:
    return store == ":memory:" or _store_path(store).exists()


@contextmanager
def _engine(args: argparse.Namespace) -> Iterator[LocalEngine]:
    in_subprocess = bool(getattr(args, "subprocess", False))
    path = _store_path(args.store)
    try:
        store: Store
        if args.store == ":memory:":
            store = _LiveMemoryStore()
        else:
            store = _LiveSqliteStore(path)
        local = LocalEngine(
            store,
            skip_time=getattr(args, "skip_time", False),
            invocation_mode="subprocess" if in_subprocess else "in_process",
        )
    except (OSError, sqlite3.Error) as error:
        raise _UsageError(f"cannot open the store {str(path)!r}: {error}") from None
    with local:
        yield local


_EventListener = Callable[[str, Mapping[str, Any]], None]


class _LiveCommits:
    """Reports each history event as the store commits it.

    ``LocalEngine.drive`` reports events between invocations; this shows
    them while an invocation in this process runs, so a long step is seen
    to start. Events that a subprocess commits are not seen here.
    """

    listener: _EventListener | None = None

    def commit(
        self,
        record: ExecutionRecord,
        operations: Iterable[Operation],
        events: Sequence[dict[str, Any]],
    ) -> None:
        super().commit(record, operations, events)  # type: ignore[misc]
        if self.listener is not None:
            for event in events:
                self.listener(record.arn, event)


class _LiveSqliteStore(_LiveCommits, SqliteStore):
    pass


class _LiveMemoryStore(_LiveCommits, MemoryStore):
    pass


def _jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO-8601 text and enums as values."""
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [
        max(len(str(cells[i])) for cells in [header, *rows]) for i in range(len(header))
    ]
    for cells in [header, *rows]:
        line = "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths))
        print(line.rstrip())


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
