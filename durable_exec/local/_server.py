"""The embedded engine behind the Lambda durable execution REST API.

:class:`DurableExecutionServer` serves the routes of the durable execution
operations of botocore's ``lambda`` model (API 2025-12-01) and of
``Invoke`` (2015-03-31), on the standard library's
:class:`~http.server.ThreadingHTTPServer`. Requests and replies are
rest-json as botocore writes and reads them: path parameters
percent-encoded whole, query parameters, JSON bodies with timestamps in
epoch seconds, and blobs (a callback's Result, an Invoke Payload) as the
raw body. A boto3 ``lambda`` client with ``endpoint_url`` set to
:attr:`DurableExecutionServer.url` cannot tell it from the service, and
neither can the SDK's :class:`~durable_exec.service.BotoServiceClient`.

Requests are checked against botocore's model before anything is
stored; a bad request (unparseable JSON, a wrong type, a value out of
range, an unknown route or method, an oversized body) gets a 4xx and a
message, and changes nothing. Refusals come as the service sends them:
``{"message": ...}`` and the code in the ``x-amzn-ErrorType`` header.

Threads and locks
-----------------
Each connection has a thread of the HTTP server. The engine applies
every call whole under its own lock. On top of that this module keeps
one re-entrant *drive lock* per execution: whoever drives an execution
(an ``Invoke``, or a background driver) holds the lock of the execution
it drives, and each invocation of an execution — the driven one or a
target of its chained invokes — runs under that execution's lock too.
Locks are always taken from caller to target, so two invocations of one
execution never run at once and no two drivers deadlock.

Background drivers are threads. Something that changes an execution from
outside — an ``Invoke`` of type ``Event``, a callback's answer, a stop,
a callback's timeout — *kicks* it: a driver is queued for the highest
running execution of its chain of callers, unless one is queued already
and has not yet taken the lock (it will see the change). A kick also
wakes drivers asleep until a timer, so that one holding the lock reacts
at once. One timer thread kicks executions when a callback's timeout or
heartbeat timeout falls due; with a skipping clock only waits and retry
delays are skipped, since the clients of the server are the ones that
answer callbacks.

:meth:`DurableExecutionServer.close` stops accepting requests, closes
open connections, interrupts drivers that sleep until a timer, and waits
for invocations in flight to end.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import heapq
import http.server
import itertools
import json
import logging
import os
import re
import socket
import socketserver
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self

import attrs

from ..errors import ValidationError, error_object_from_exception
from ..handler import DurableHandler
from ..wire import (
    ErrorObject,
    ExecutionStatus,
    OperationUpdate,
    from_wire,
    to_wire,
)
from ._clock import Clock, RealClock, SkippingClock
from ._engine import ACCOUNT, DEFAULT_EXECUTION_TIMEOUT, REGION, Engine
from ._errors import ServiceError
from ._rest import (
    HttpError,
    Route,
    bad,
    bad_content,
    dump,
    json_body,
    parse_query,
    read_input,
    routes,
    service_model,
    show,
    split_path,
)
from ._runner import LocalEngine, _absolute_ref, _ref_of, load_handler
from ._store import ExecutionRecord, Store

__all__ = ["DurableExecutionServer"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 7 * 1024 * 1024
# Lambda's Invoke payload limits: 6 MB answered at once, 1 MB queued.
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024
# A body up to this many times the cap is read and thrown away before the
# refusal, so that a client that writes its whole request before reading
# (boto3 does) sees the answer instead of a reset connection.
_DRAIN_FACTOR = 4
# Seconds a connection may sit idle, or a body take to arrive.
_SOCKET_TIMEOUT = 60.0
# Seconds close() waits for background drivers to end.
_CLOSE_TIMEOUT = 30.0
_DEFAULT_PAGE = 100
_RETENTION_DAYS = 30
_VERSION = "$LATEST"

# One boto3 session for every server's clients: it loads the lambda model
# once. Sessions are not safe to share between threads; the lock makes
# creating clients from one so, and the clients themselves are.
_boto_lock = threading.Lock()
_boto_session: Any = None

# The function in a name, name:qualifier, partial or full function ARN.
_FUNCTION_REFERENCE = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?"
)


class _Closing(BaseException):
    """Raised in a driver when the server closes under it.

    A BaseException, so that no ``except Exception`` on the way out of
    the runner swallows it.
    """


# -- the server ------------------------------------------------------------------


@attrs.frozen
class _Function:
    handler: DurableHandler[Any, Any] | Callable[[Any, Any], Any]
    ref: str | None
    timeout_seconds: int

    @property
    def durable(self) -> bool:
        return isinstance(self.handler, DurableHandler)


class _ServerClock:
    """The engine's clock, with sleeps that end early when needed.

    A driver sleeps until an execution's next timer. Two things cut the
    sleep short: :meth:`poke`, when an execution changed from outside (an
    answer, a stop), after which drive() looks again at what is due and
    sleeps anew if nothing is; and :meth:`close`, after which the sleep
    raises :class:`_Closing`, ending the driver between two engine calls,
    where nothing is half done.
    """

    def __init__(self, base: Clock) -> None:
        self.base = base
        self._changed = threading.Condition()
        self._generation = 0
        self._seen = threading.local()
        self._closing = False

    def now(self) -> _dt.datetime:
        return self.base.now()

    def poke(self) -> None:
        """Wake every sleeping driver to look again."""
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def close(self) -> None:
        """End every sleep, now and later, with :class:`_Closing`."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()

    def sleep_until(self, moment: _dt.datetime) -> None:
        if not isinstance(self.base, RealClock):
            # A skipping clock returns at once; another clock knows best.
            if self._closing:
                raise _Closing()
            self.base.sleep_until(moment)
            return
        with self._changed:
            # A poke since this thread last woke may have come while its
            # driver decided to sleep, too late to be seen: look again.
            if getattr(self._seen, "generation", None) != self._generation:
                self._seen.generation = self._generation
                return
            while True:
                if self._closing:
                    raise _Closing()
                if self._seen.generation != self._generation:
                    self._seen.generation = self._generation
                    return
                delay = (moment - self.base.now()).total_seconds()
                if delay <= 0:
                    return
                self._changed.wait(delay)


class _Runner(LocalEngine):
    """The runner, with each invocation under its execution's drive lock."""

    def __init__(self, server: DurableExecutionServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server = server

    def _invoke(self, record: ExecutionRecord) -> None:
        with self._server._drive_lock(record.arn):
            # Another driver may have run the owed invocation while this
            # one waited for the lock.
            fresh = self.engine.record(record.arn)
            if fresh.terminal or not fresh.owed or fresh.invocation_id is not None:
                return
            super()._invoke(fresh)


class DurableExecutionServer:
    """The embedded engine behind the durable execution REST API.

    Serves, on ``http://HOST:PORT``: CheckpointDurableExecution,
    GetDurableExecutionState, GetDurableExecution,
    GetDurableExecutionHistory, ListDurableExecutionsByFunction,
    SendDurableExecutionCallbackSuccess/Failure/Heartbeat,
    StopDurableExecution, and Invoke for the functions registered here.

    ``Invoke`` with ``RequestResponse`` (the default) creates the
    execution (or, given the name of one with the same input, finds it),
    drives it until it ends or waits only for the outside world, and
    answers: 200 with the result for a SUCCEEDED execution; 200 with
    ``X-Amz-Function-Error: Unhandled`` and the error as Lambda's
    ``{"errorType", "errorMessage", ...}`` for a FAILED, TIMED_OUT or
    STOPPED one; 202 with an empty body for one that still runs, waiting
    for a callback (ask GetDurableExecution later). ``Event`` answers 202
    at once and drives the execution in the background. The same name
    with another input is refused with
    ``DurableExecutionAlreadyStartedException`` (409).

    Invocations run in this process, each handler talking to the engine
    directly, or with ``sdk_over_http`` through a
    :class:`~durable_exec.service.BotoServiceClient` pointed at this
    server, exactly as on Lambda.

    Args:
        functions: function name -> handler: a durable handler, a plain
            ``handler(event, context)`` function, or
            ``FILE_OR_MODULE:HANDLER``. More with :meth:`register`.
        host: the address to bind; default ``127.0.0.1``, loopback only.
        port: the port; default 0, any free port (see :attr:`port`).
        store: a :class:`Store`, a SQLite path, or ``":memory:"`` (the
            default).
        skip_time: jump over waits and retry delays instead of sleeping.
            Callback timeouts still take their time: the clients answer
            callbacks.
        clock: the engine's clock, instead of one chosen by
            ``skip_time``.
        sdk_over_http: make in-process invocations reach the engine
            through this server's HTTP API instead of directly. Default
            False.
        max_body_bytes: the largest request body accepted; default 7 MiB.
            A larger one is refused with 413.

    The server listens from construction; :meth:`start` (or ``with``)
    begins serving in a background thread.
    """

    def __init__(
        self,
        functions: Mapping[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        store: Store | str | os.PathLike[str] | None = ":memory:",
        skip_time: bool = False,
        clock: Clock | None = None,
        sdk_over_http: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ValidationError(f"host must be a non-empty string (got {host!r})")
        if (
            isinstance(port, bool)
            or not isinstance(port, int)
            or not 0 <= port <= 65535
        ):
            raise ValidationError(f"port must be 0 to 65535 (got {port!r})")
        if (
            isinstance(max_body_bytes, bool)
            or not isinstance(max_body_bytes, int)
            or max_body_bytes < 1
        ):
            raise ValidationError(
                f"max_body_bytes must be an int >= 1 (got {max_body_bytes!r})"
            )
        if clock is None:
            clock = SkippingClock() if skip_time else RealClock()
        self._clock = _ServerClock(clock)
        self.local: LocalEngine = _Runner(
            self, store=store if store is not None else ":memory:", clock=self._clock
        )
        # Callback timeouts wait for the clients, whatever the clock.
        self.local.skip_callback_timeouts = False
        self.engine: Engine = self.local.engine
        self.max_body_bytes = max_body_bytes
        self.sdk_over_http = sdk_over_http
        self._functions: dict[str, _Function] = {}
        self._routes = routes()
        self._model = service_model()

        # Drivers: see the module docstring.
        self._state = threading.Condition(threading.RLock())
        self._locks: dict[str, threading.RLock] = {}
        self._queued: dict[str, int] = {}
        self._jobs = itertools.count(1)
        self._busy = 0
        self._threads: set[threading.Thread] = set()
        self._timers: list[tuple[_dt.datetime, str]] = []
        self._timer_thread: threading.Thread | None = None
        self._closing = False
        self._closed = False

        self._connections: set[socket.socket] = set()
        self._http = _HttpServer((host, port), _RequestHandler, self)
        self.host = host
        self.port: int = self._http.server_address[1]
        self._serve_thread: threading.Thread | None = None
        for name, handler in (functions or {}).items():
            self.register(name, handler)

    # -- public ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint, e.g. ``http://127.0.0.1:50123``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def register(
        self,
        function_name: str,
        handler: DurableHandler[Any, Any] | Callable[[Any, Any], Any] | str,
        *,
        execution_timeout: int = DEFAULT_EXECUTION_TIMEOUT,
    ) -> None:
        """Serve ``handler`` as ``function_name``; see
        :meth:`LocalEngine.register`."""
        self.local.register(function_name, handler, execution_timeout=execution_timeout)
        loaded: Any
        ref: str | None
        if isinstance(handler, str):
            # Loaded already by the runner; this is the same object.
            loaded = load_handler(handler)
            ref = _absolute_ref(handler)
        else:
            loaded = handler
            ref = _ref_of(handler) if isinstance(handler, DurableHandler) else None
        self._functions[function_name] = _Function(loaded, ref, execution_timeout)

    def start(self) -> Self:
        """Serve requests in a background thread; returns the server."""
        with self._state:
            if self._closed:
                raise ValidationError("the server is closed")
            if self._serve_thread is not None:
                return self
            if self.sdk_over_http:
                from ..service._boto import BotoServiceClient

                self.local.client = BotoServiceClient(  # type: ignore[assignment]
                    self.lambda_client()
                )
            self._serve_thread = threading.Thread(
                target=self._http.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"durable-exec-server:{self.port}",
                daemon=True,
            )
            self._timer_thread = threading.Thread(
                target=self._run_timers, name="durable-exec-timers", daemon=True
            )
            self._serve_thread.start()
            self._timer_thread.start()
        logger.debug("serving at %s", self.url)
        return self

    def serve_forever(self) -> None:
        """Serve until :meth:`close` or KeyboardInterrupt, which is
        raised after the server has closed."""
        self.start()
        try:
            while not self._closed:
                with self._state:
                    self._state.wait(0.5)
        except KeyboardInterrupt:
            self.close()
            raise

    def lambda_client(self, **config: Any) -> Any:
        """A boto3 ``lambda`` client for this server: region us-east-1,
        dummy credentials, botocore's retries off. ``config`` goes to
        :class:`botocore.config.Config`."""
        import boto3  # type: ignore[import-untyped, unused-ignore]
        import botocore.config  # type: ignore[import-untyped, unused-ignore]

        settings: dict[str, Any] = {
            "retries": {"total_max_attempts": 1, "mode": "standard"},
            "max_pool_connections": 50,
            "read_timeout": 900,
        }
        settings.update(config)
        global _boto_session
        with _boto_lock:
            if _boto_session is None:
                _boto_session = boto3.session.Session()
            return _boto_session.client(
                "lambda",
                endpoint_url=self.url,
                region_name=REGION,
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=botocore.config.Config(**settings),
            )

    def tick(self) -> None:
        """Act now on every timer due by the clock.

        The timer thread sleeps by the wall clock; after moving a
        :class:`SkippingClock` forward by hand, call this so that what
        fell due (a callback's timeout) fires at once. The drivers it
        starts count for :meth:`wait_idle`.
        """
        due: list[str] = []
        with self._state:
            now = self._clock.now()
            while self._timers and self._timers[0][0] <= now:
                _, arn = heapq.heappop(self._timers)
                if arn not in due:
                    due.append(arn)
        for arn in due:
            self._kick(arn, fire=True)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no background driver is queued or running.

        Returns False if ``timeout`` seconds passed first. A driver's
        work can queue another (a target's end wakes its caller); this
        waits for all of them.
        """
        with self._state:
            return self._state.wait_for(lambda: self._busy == 0, timeout)

    def close(self) -> None:
        """Stop serving, stop the drivers, and close the store.

        Drivers sleeping until a timer stop at once; an invocation in
        flight cannot be interrupted and is waited for, up to 30 s. What
        was stored stays: with a SQLite store, a later server (or
        ``durable-exec run --name``) carries on.
        """
        with self._state:
            if self._closed:
                return
            self._closing = True
            self._clock.close()
            self._state.notify_all()
            serving = self._serve_thread is not None

        if serving:
            self._http.shutdown()
        self._http.server_close()
        with self._state:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        deadline = _CLOSE_TIMEOUT
        with self._state:
            idle = self._state.wait_for(lambda: self._busy == 0, deadline)
            self._closed = True
            self._state.notify_all()
        if self._timer_thread is not None:
            self._timer_thread.join()
        if idle:
            self.local.close()
        else:
            logger.warning(
                "closing with %d background drivers still running; the "
                "store is left open for them",
                self._busy,
            )
        logger.debug("closed the server at %s", self.url)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- drivers ------------------------------------------------------------------

    def _drive_lock(self, arn: str) -> threading.RLock:
        with self._state:
            lock = self._locks.get(arn)
            if lock is None:
                lock = self._locks[arn] = threading.RLock()
            return lock

    def _driver_of(self, arn: str) -> str | None:
        """The execution to drive for a change to ``arn``: the highest
        running one of ``arn`` and its callers; None if all have ended.

        A caller's drive runs its targets, so driving the target alone
        could leave the caller's reaction to it undone.
        """
        chosen: str | None = None
        current: str | None = arn
        while current is not None:
            try:
                record = self.engine.snapshot(current)
            except ServiceError:
                break
            if not record.terminal:
                chosen = current
            current = record.parent_arn
        return chosen

    @contextmanager
    def _tracked(self) -> Iterator[None]:
        """Count a driver in :attr:`_busy` while it runs, so that close()
        and wait_idle() wait for it; refuse to start one when closing."""
        with self._state:
            if self._closing:
                raise _Closing()
            self._busy += 1
        try:
            yield
        finally:
            with self._state:
                self._busy -= 1
                self._state.notify_all()

    def _drive(self, arn: str) -> None:
        """Drive ``arn`` under its lock, then arm its callbacks' timers."""
        with self._drive_lock(arn):
            self.local.drive(arn)
        self._arm(arn)

    def _arm(self, arn: str) -> None:
        """Queue the next timer of ``arn`` and of the running targets of
        its chained invokes, theirs and so on.

        A target whose caller has ended is armed too: no caller's driver
        runs it any more.
        """
        pending = [arn]
        seen: set[str] = set()
        while pending:
            member = pending.pop()
            if member in seen:
                continue
            seen.add(member)
            record = self.engine.snapshot(member)
            if not record.terminal:
                due = self.engine.next_due(member, callback_timeouts=True)
                if due is not None:
                    self._schedule(due, member)
            for event in record.events:
                if event["EventType"] == "ChainedInvokeStarted":
                    child = event["ChainedInvokeStartedDetails"].get(
                        "DurableExecutionArn"
                    )
                    if child:
                        pending.append(child)

    def _kick(self, arn: str, *, fire: bool = False) -> None:
        """Drive the execution that reacts to a change of ``arn``, in the
        background.

        With ``fire``, first fire every timer of ``arn`` that is due:
        drive() leaves callback timeouts to the clients. The engine
        applies a timeout whole, and like an answer it reaches an
        invocation in flight, so no drive lock is needed for it.
        """
        if fire:
            try:
                self.engine.fire_due(arn)
            except ServiceError as error:
                logger.warning("cannot fire the timers of %s: %s", arn, error)
                return
        # A driver asleep until a timer of this execution's family looks
        # again: the change may be what it should act on.
        self._clock.poke()
        driver = self._driver_of(arn)
        if driver is None:
            return
        self._spawn(driver, lambda: self._drive(driver), dedupe=True)

    def _spawn(
        self, key: str, work: Callable[[], None], *, dedupe: bool = False
    ) -> None:
        """Run ``work`` on a thread of its own, counted in :attr:`_busy`.

        With ``dedupe``, ``key`` is the execution driven, and no new job
        is queued while one for it waits for its lock.
        """
        with self._state:
            if self._closing:
                return
            if dedupe and key in self._queued:
                return
            job = next(self._jobs)
            if dedupe:
                self._queued[key] = job
            self._busy += 1
            thread = threading.Thread(
                target=self._run_job,
                args=(key, job, work, dedupe),
                name=f"durable-exec-driver-{job}",
                daemon=True,
            )
            self._threads.add(thread)
            thread.start()

    def _run_job(
        self, key: str, job: int, work: Callable[[], None], dedupe: bool
    ) -> None:
        try:
            if dedupe:
                # Changes made from here on need a driver of their own;
                # the ones before, this one sees once it holds the lock.
                with self._drive_lock(key), self._state:
                    if self._queued.get(key) == job:
                        del self._queued[key]
                work()
            else:
                work()
        except _Closing:
            pass
        except Exception:
            # No caller sees a background driver fail: log it.
            logger.exception("background work on %s failed", key)
        finally:
            with self._state:
                if self._queued.get(key) == job:
                    del self._queued[key]
                self._busy -= 1
                self._threads.discard(threading.current_thread())
                self._state.notify_all()

    def _schedule(self, moment: _dt.datetime, arn: str) -> None:
        with self._state:
            heapq.heappush(self._timers, (moment, arn))
            self._state.notify_all()

    def _run_timers(self) -> None:
        """Kick each execution when its next timer falls due."""
        while True:
            with self._state:
                if self._closing:
                    return
                if not self._timers:
                    self._state.wait()
                    continue
                moment, arn = self._timers[0]
                delay = (moment - self._clock.now()).total_seconds()
                if delay > 0:
                    self._state.wait(delay)
                    continue
                heapq.heappop(self._timers)
                # Entries for the same execution and moment are one.
                while self._timers and self._timers[0] == (moment, arn):
                    heapq.heappop(self._timers)
                # Busy from here, so that wait_idle() cannot slip in
                # between the pop and the driver's start.
                self._busy += 1
            try:
                self._kick(arn, fire=True)
            finally:
                with self._state:
                    self._busy -= 1
                    self._state.notify_all()

    # -- operations --------------------------------------------------------------

    def _operation(self, name: str) -> Any:
        return self._model.operation_model(name)

    def handle(
        self,
        method: str,
        raw_path: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request: (status, headers, body).

        ``headers`` has lower-case names. Raises :class:`HttpError` or
        :class:`ServiceError` to refuse.
        """
        path, _, raw_query = raw_path.partition("?")
        segments = split_path(path)
        route, labels = self._route(method, segments)
        operation = self._operation(route.operation)
        if not route.served:
            raise HttpError(
                404,
                "UnknownOperationException",
                f"{route.operation} is not supported by this server",
            )
        params = read_input(operation, labels, parse_query(raw_query), headers, body)
        answer: Callable[[dict[str, Any]], Any] = getattr(
            self, "_op_" + route.operation
        )
        result = answer(params)
        if isinstance(result, tuple):
            status, extra, payload = result
            return status, extra, payload
        status = operation.http.get("responseCode", 200)
        output = dump(operation.output_shape, result or {})
        return status, {}, json.dumps(output, separators=(",", ":")).encode()

    def _route(self, method: str, segments: list[str]) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route in self._routes:
            labels = route.match(segments)
            if labels is None:
                continue
            if route.method == method:
                return route, labels
            allowed.append(route.method)
        if allowed:
            raise HttpError(
                405,
                "MethodNotAllowedException",
                f"{method} is not allowed here; use {' or '.join(sorted(allowed))}",
                {"Allow": ", ".join(sorted(allowed))},
            )
        raise HttpError(
            404,
            "UnknownOperationException",
            f"no operation is served at {method} /{'/'.join(segments)}",
        )

    # Each _op_ method takes the checked parameters and returns the output
    # structure, or (status, headers, body) to answer as it is.

    def _op_CheckpointDurableExecution(self, params: dict[str, Any]) -> Any:
        updates = []
        for index, raw in enumerate(params.get("Updates", [])):
            try:
                updates.append(from_wire(raw, OperationUpdate))
            except Exception as error:  # noqa: BLE001 - cattrs' many errors
                raise bad(f"Updates[{index}] is not an update: {error}") from None
        reply = self.engine.checkpoint(
            params["DurableExecutionArn"],
            params["CheckpointToken"],
            updates,
            params.get("ClientToken"),
        )
        state: dict[str, Any] = {
            "Operations": [to_wire(operation) for operation in reply.operations]
        }
        if reply.next_marker:
            state["NextMarker"] = reply.next_marker
        return {
            "CheckpointToken": reply.checkpoint_token,
            "NewExecutionState": state,
        }

    def _op_GetDurableExecutionState(self, params: dict[str, Any]) -> Any:
        page = self.engine.get_execution_state(
            params["DurableExecutionArn"],
            params["CheckpointToken"],
            params.get("Marker"),
            params.get("MaxItems"),
        )
        return {
            "Operations": [to_wire(operation) for operation in page.operations],
            "NextMarker": page.next_marker,
        }

    def _op_GetDurableExecution(self, params: dict[str, Any]) -> Any:
        record = self.engine.snapshot(params["DurableExecutionArn"])
        include = params.get("IncludeExecutionData", True)
        output: dict[str, Any] = {
            "DurableExecutionArn": record.arn,
            "DurableExecutionName": record.name,
            "FunctionArn": _function_arn(record.arn),
            "StartTimestamp": record.start,
            "Status": record.status.value,
            "EndTimestamp": record.end,
            "Version": _VERSION,
            "ExecutionDataIncluded": include,
            "DurableConfig": {
                "ExecutionTimeout": record.timeout_seconds,
                "RetentionPeriodInDays": _RETENTION_DAYS,
            },
        }
        if not record.terminal:
            output["ExpectedExecutionTimeoutTimestamp"] = record.start + _dt.timedelta(
                seconds=record.timeout_seconds
            )
        if include:
            output["InputPayload"] = record.input_payload
            output["Result"] = record.result
            output["Error"] = to_wire(record.error) if record.error else None
        return output

    def _op_GetDurableExecutionHistory(self, params: dict[str, Any]) -> Any:
        record = self.engine.snapshot(params["DurableExecutionArn"])
        events = list(record.events)
        if params.get("ReverseOrder"):
            events.reverse()
        if not params.get("IncludeExecutionData", True):
            events = [_without_data(event) for event in events]
        page, marker = _page(
            events, "history", params.get("Marker"), params.get("MaxItems")
        )
        return {"Events": page, "NextMarker": marker}

    def _op_ListDurableExecutionsByFunction(self, params: dict[str, Any]) -> Any:
        name, qualifier = self._function_reference(params["FunctionName"])
        arns = self.engine.find_arns(function_name=name)
        if name not in self._functions and not arns:
            raise HttpError(
                404,
                "ResourceNotFoundException",
                f"Function not found: {_function_arn_of(name)}",
            )
        wanted_qualifier = params.get("Qualifier") or qualifier
        statuses = set(params.get("Statuses") or ())
        after = params.get("StartedAfter")
        before = params.get("StartedBefore")
        wanted_name = params.get("DurableExecutionName")
        entries = []
        for arn in arns:
            record = self.engine.snapshot(arn)
            if wanted_qualifier not in (None, _VERSION):
                continue
            if wanted_name is not None and record.name != wanted_name:
                continue
            if statuses and record.status.value not in statuses:
                continue
            if after is not None and not record.start > after:
                continue
            if before is not None and not record.start < before:
                continue
            entries.append(
                {
                    "DurableExecutionArn": record.arn,
                    "DurableExecutionName": record.name,
                    "FunctionArn": _function_arn(record.arn),
                    "Status": record.status.value,
                    "StartTimestamp": record.start,
                    "EndTimestamp": record.end,
                }
            )
        # Newest first, unless ReverseOrder asks for oldest first.
        if not params.get("ReverseOrder"):
            entries.reverse()
        page, marker = _page(
            entries, "list", params.get("Marker"), params.get("MaxItems")
        )
        return {"DurableExecutions": page, "NextMarker": marker}

    def _op_SendDurableExecutionCallbackSuccess(self, params: dict[str, Any]) -> Any:
        callback_id = params["CallbackId"]
        self.engine.send_callback_success(callback_id, params.get("Result"))
        self._kick_callback(callback_id)
        return {}

    def _op_SendDurableExecutionCallbackFailure(self, params: dict[str, Any]) -> Any:
        callback_id = params["CallbackId"]
        error = _error_object(params.get("Error"))
        self.engine.send_callback_failure(callback_id, error)
        self._kick_callback(callback_id)
        return {}

    def _op_SendDurableExecutionCallbackHeartbeat(self, params: dict[str, Any]) -> Any:
        callback_id = params["CallbackId"]
        self.engine.send_callback_heartbeat(callback_id)
        found = self.engine.store.find_callback(callback_id)
        if found is not None:
            self._arm(found[0])
        return {}

    def _kick_callback(self, callback_id: str) -> None:
        found = self.engine.store.find_callback(callback_id)
        if found is not None:
            self._kick(found[0])

    def _op_StopDurableExecution(self, params: dict[str, Any]) -> Any:
        arn = params["DurableExecutionArn"]
        stopped = self.engine.stop_execution(arn, _error_object(params.get("Error")))
        # Its caller, if any, reacts to the stop.
        self._kick(arn)
        return {"StopTimestamp": stopped}

    def _op_Invoke(self, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        name, qualifier = self._function_reference(params["FunctionName"])
        given = params.get("Qualifier")
        if given is not None and qualifier is not None and given != qualifier:
            raise bad(
                f"the qualifier {given!r} differs from the one in the function "
                f"name ({qualifier!r})"
            )
        qualifier = given or qualifier
        function = self._functions.get(name)
        if function is None or qualifier not in (None, _VERSION):
            shown = _function_arn_of(name) + (f":{qualifier}" if qualifier else "")
            raise HttpError(
                404, "ResourceNotFoundException", f"Function not found: {shown}"
            )
        kind = params.get("InvocationType", "RequestResponse")
        payload: bytes = params.get("Payload", b"")
        limit = MAX_ASYNC_PAYLOAD_BYTES if kind == "Event" else MAX_SYNC_PAYLOAD_BYTES
        if len(payload) > limit:
            raise HttpError(
                413,
                "RequestTooLargeException",
                f"the payload is {len(payload):,} bytes; an {kind} invoke takes "
                f"at most {limit:,}",
            )
        if payload.strip():
            json_body(payload, "the payload")
        text = payload.decode() if payload else ""
        execution_name = params.get("DurableExecutionName")
        if not function.durable and execution_name is not None:
            raise bad(
                f"function {name!r} is not durable; DurableExecutionName is "
                "for durable functions only"
            )
        headers = {"X-Amz-Executed-Version": _VERSION}
        if kind == "DryRun":
            return 204, headers, b""
        if not function.durable:
            return self._invoke_plain(function, text, kind, headers)

        arn = self._execution_for(name, function, text, execution_name)
        headers["X-Amz-Durable-Execution-Arn"] = arn
        if kind == "Event":
            self._kick(arn)
            return 202, headers, b""

        driver = self._driver_of(arn)
        if driver is not None:
            with self._tracked():
                self._drive(driver)
        record = self.engine.snapshot(arn)
        if record.status is ExecutionStatus.SUCCEEDED:
            result = record.result if record.result is not None else "null"
            return 200, headers, result.encode()
        if record.terminal:
            headers["X-Amz-Function-Error"] = "Unhandled"
            return 200, headers, _lambda_error(record)
        # It waits for the outside world: no result yet.
        return 202, headers, b""

    def _execution_for(
        self, name: str, function: _Function, text: str, execution_name: str | None
    ) -> str:
        """The execution an Invoke runs: a new one, or the named one if it
        has the same input."""

        def conflict(arn: str) -> HttpError:
            return HttpError(
                409,
                "DurableExecutionAlreadyStartedException",
                f"execution {execution_name!r} of {name!r} exists with another "
                f"input ({arn})",
            )

        if execution_name is not None:
            existing = self.engine.find_arns(name=execution_name, function_name=name)
            if existing:
                if self.engine.snapshot(existing[0]).input_payload != text:
                    raise conflict(existing[0])
                return existing[0]
        arn = self.engine.create_execution(
            name,
            text,
            name=execution_name,
            timeout_seconds=function.timeout_seconds,
            handler_ref=function.ref,
        )
        # Two invokes of one new name race; the second finds the first's.
        if self.engine.snapshot(arn).input_payload != text:
            raise conflict(arn)
        return arn

    def _invoke_plain(
        self, function: _Function, text: str, kind: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        event = json.loads(text) if text.strip() else None

        def call() -> tuple[bool, bytes]:
            try:
                result = function.handler(event, None)
                return True, json.dumps(result).encode()
            except Exception as error:  # noqa: BLE001 - the function's error
                recorded = error_object_from_exception(error)
                return False, json.dumps(_lambda_error_fields(recorded)).encode()

        if kind == "Event":
            self._spawn("plain", lambda: _ignore(call()))
            return 202, headers, b""
        ok, body = call()
        if not ok:
            headers["X-Amz-Function-Error"] = "Unhandled"
        return 200, headers, body

    def _function_reference(self, reference: str) -> tuple[str, str | None]:
        match = _FUNCTION_REFERENCE.fullmatch(reference)
        if match is None:
            raise bad(f"FunctionName {reference!r} is not a function name or ARN")
        if (match["region"] not in (None, REGION)) or (
            match["account"] not in (None, ACCOUNT)
        ):
            raise HttpError(
                404,
                "ResourceNotFoundException",
                f"Function not found: {reference} (this server is account "
                f"{ACCOUNT} in {REGION})",
            )
        return match["name"], match["qualifier"]


# -- outputs --------------------------------------------------------------------


def _ignore(_: Any) -> None:
    pass


def _function_arn(execution_arn: str) -> str:
    return execution_arn.partition("/durable-execution/")[0]


def _function_arn_of(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _error_object(raw: Mapping[str, Any] | None) -> ErrorObject | None:
    if raw is None:
        return None
    try:
        return from_wire(raw, ErrorObject)
    except Exception as error:  # noqa: BLE001 - cattrs' many errors
        raise bad(f"Error is not an ErrorObject: {error}") from None


def _lambda_error_fields(error: ErrorObject | None) -> dict[str, Any]:
    """An error as Lambda reports a function's error in the payload."""
    fields: dict[str, Any] = {}
    if error is not None:
        for key, value in (
            ("errorType", error.error_type),
            ("errorMessage", error.error_message),
            ("errorData", error.error_data),
            ("stackTrace", list(error.stack_trace) if error.stack_trace else None),
        ):
            if value is not None:
                fields[key] = value
    return fields


def _lambda_error(record: ExecutionRecord) -> bytes:
    fields = _lambda_error_fields(record.error)
    defaults = {
        ExecutionStatus.FAILED: ("Error", "the execution failed"),
        ExecutionStatus.TIMED_OUT: ("Execution.Timeout", "the execution timed out"),
        ExecutionStatus.STOPPED: ("Execution.Stopped", "the execution was stopped"),
    }
    error_type, message = defaults.get(record.status, ("Error", "it failed"))
    fields.setdefault("errorType", error_type)
    fields.setdefault("errorMessage", message)
    return json.dumps(fields).encode()


def _without_data(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event without payloads: inputs, results, errors."""
    copy = dict(event)
    for key, details in event.items():
        if key.endswith("Details") and isinstance(details, Mapping):
            copy[key] = {
                name: (
                    {k: v for k, v in value.items() if k != "Payload"}
                    if name in ("Input", "Result", "Error")
                    and isinstance(value, Mapping)
                    else value
                )
                for name, value in details.items()
            }
    return copy


def _page(
    items: list[Any], kind: str, marker: str | None, max_items: int | None
) -> tuple[list[Any], str | None]:
    start = _marker_offset(kind, marker)
    size = max_items or _DEFAULT_PAGE
    page = items[start : start + size]
    end = start + len(page)
    if end >= len(items):
        return page, None
    token = base64.urlsafe_b64encode(f"{kind}:{end}".encode()).decode()
    return page, token


def _marker_offset(kind: str, marker: str | None) -> int:
    if not marker:
        return 0
    try:
        text = base64.urlsafe_b64decode(marker.encode()).decode()
        found, _, offset = text.partition(":")
        if found != kind or not offset.isdigit():
            raise ValueError(text)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad(f"Marker {show(marker)} is not one this server issued") from None


# -- HTTP -----------------------------------------------------------------------


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # A busy test suite may open connections faster than they are taken.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        app: DurableExecutionServer,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request is no fault of ours; anything
        # else escaping a handler is, and is logged rather than printed.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            logger.debug("connection from %s ended: %s", client_address, error)
            return
        logger.exception("request from %s failed", client_address)

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's name up in DNS, which can take
        # seconds; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _RequestHandler(http.server.BaseHTTPRequestHandler):
    """Reads one request at a time off a connection and answers it."""

    protocol_version = "HTTP/1.1"
    server_version = "durable-exec"
    sys_version = ""
    timeout = _SOCKET_TIMEOUT
    # Replies go out at once: with Nagle's algorithm a reply could wait
    # for the client's delayed ACK, 40 ms a checkpoint.
    disable_nagle_algorithm = True
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        with self.server.app._state:
            self.server.app._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.app._state:
                self.server.app._connections.discard(self.connection)

    def __getattr__(self, name: str) -> Any:
        # Every method, known or not, goes to the router: an unknown one
        # is a 405 or 404 like any other bad request, not the base
        # class's 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it.
        try:
            length = self._content_length()
        except HttpError as error:
            self._refuse(error, close=True)
            return False
        if length > self.server.app.max_body_bytes:
            self._refuse(self._too_large(length), close=True)
            return False
        return super().handle_expect_100()

    def send_error(
        self, code: int, message: str | None = None, explain: str | None = None
    ) -> None:
        # The base class's own refusals (a malformed request line, headers
        # too long) as JSON like ours; a bad request is never a 5xx.
        status = code if code < 500 else 400
        text = message or self.responses.get(code, ("error",))[0]
        self.close_connection = True
        self._refuse(HttpError(status, "InvalidRequestException", text), close=True)

    def _dispatch(self) -> None:
        request_id = str(uuid.uuid4())
        try:
            body = self._read_body()
            headers_in = {k.lower(): v for k, v in self.headers.items()}
            status, headers, payload = self.server.app.handle(
                self.command, self.path, headers_in, body
            )
        except HttpError as error:
            self._refuse(error, request_id=request_id)
            return
        except ServiceError as error:
            self._refuse(
                HttpError(error.status, error.code, error.message),
                request_id=request_id,
            )
            return
        except _Closing:
            self._refuse(
                HttpError(503, "ServiceUnavailableException", "the server is closing"),
                request_id=request_id,
                close=True,
            )
            return
        except Exception as error:  # noqa: BLE001 - a bug of ours: say so
            logger.error(
                "%s %s failed: %s\n%s",
                self.command,
                self.path,
                error,
                traceback.format_exc(),
            )
            self._refuse(
                HttpError(
                    500,
                    "ServiceException",
                    f"the server failed: {type(error).__name__}: {error}",
                ),
                request_id=request_id,
            )
            return
        content_type = headers.pop("Content-Type", "application/json")
        self._answer(status, payload, content_type, headers, request_id)

    def _content_length(self) -> int:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raise HttpError(
                411,
                "LengthRequiredException",
                "chunked bodies are not accepted; send Content-Length",
            )
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        if not raw.strip().isdigit():
            raise bad_content(f"Content-Length {raw!r} is not a byte count")
        return int(raw)

    def _too_large(self, length: int) -> HttpError:
        return HttpError(
            413,
            "RequestTooLargeException",
            f"the request body is {length:,} bytes; at most "
            f"{self.server.app.max_body_bytes:,} are accepted",
        )

    def _read_body(self) -> bytes:
        try:
            length = self._content_length()
        except HttpError:
            self.close_connection = True
            raise
        limit = self.server.app.max_body_bytes
        if length > limit:
            self.close_connection = True
            if length <= limit * _DRAIN_FACTOR:
                self._drain(length)
            raise self._too_large(length)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            raise bad_content(f"the body ended after {len(body):,} of {length:,} bytes")
        return body

    def _drain(self, length: int) -> None:
        remaining = length
        try:
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    return
                remaining -= len(chunk)
        except OSError:
            return

    def _refuse(
        self,
        error: HttpError,
        *,
        request_id: str | None = None,
        close: bool = False,
    ) -> None:
        logger.debug(
            "%s %s refused: %d %s: %s",
            getattr(self, "command", "?"),
            getattr(self, "path", "?"),
            error.status,
            error.code,
            error.message,
        )
        body = json.dumps(
            {
                "Type": "User" if error.status < 500 else "Service",
                "message": error.message,
            }
        ).encode()
        headers = {"x-amzn-ErrorType": error.code, **error.headers}
        if close:
            self.close_connection = True
        self._answer(
            error.status,
            body,
            "application/json",
            headers,
            request_id or str(uuid.uuid4()),
        )

    def _answer(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str],
        request_id: str,
    ) -> None:
        # Written by hand, status line, headers and body in one write:
        # the base class writes the body apart, and a reply in two
        # segments can wait for the client's delayed ACK.
        self.log_request(status)
        reason = self.responses.get(status, ("",))[0]
        lines = [
            f"{self.protocol_version} {status} {reason}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"x-amzn-RequestId: {request_id}",
        ]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        try:
            self.wfile.write(head if self.command == "HEAD" else head + body)
        except OSError:
            # The client went away; nothing to tell it.
            self.close_connection = True
