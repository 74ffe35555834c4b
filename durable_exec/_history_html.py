"""The timeline page of an execution: one self-contained HTML file.

Rows follow the operation tree, one per operation, indented under the
parent; the right-hand track puts a bar on a shared time axis, so branches
and items that ran side by side are seen to overlap. A step that was
retried is drawn as its attempts (red when failed) with a hatched gap and
an orange marker for each retry delay. Invocations are pale bands behind
every row and bars of their own in the first row.

Everything is rendered here, server side, as plain elements positioned in
percent of the axis; the inline script only folds and unfolds rows. The
page loads nothing, so it opens the same offline, from a mail or a CI
artifact. Large trees are cut (see ``render``) to keep the page light.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Callable, Iterator, Sequence

from .history import (
    CALLBACK,
    CHAINED_INVOKE,
    CONTEXT,
    WAIT,
    Attempt,
    ExecutionTree,
    Invocation,
    OperationNode,
    format_duration,
)
from .wire import ErrorObject, ExecutionStatus, OperationStatus

# The colours are part of the page's contract: the screenshot test counts
# pixels of them. Keep them in step with tests/test_history_view.py.
OK = "#2e9d4f"
FAILED = "#d64545"
RUNNING = "#4a90d9"
CANCELLED = "#d9a520"
WAITING = "#8fa9c9"
CALLBACK_OK = "#9b7fd1"
INVOKE_OK = "#2a9d8f"
CONTEXT_OK = "#b9e0c4"
RETRY_MARK = "#e08a00"
BAND = "#fbf3d5"
BAND_FAILED = "#fde2e2"
INVOCATION = "#e6c65c"

_FAILED_STATUSES = frozenset({OperationStatus.FAILED, OperationStatus.TIMED_OUT})
_HALTED_STATUSES = frozenset({OperationStatus.CANCELLED, OperationStatus.STOPPED})
# Roughly how many labelled ticks the axis gets.
_TICKS = 8
# Tick steps in seconds, from a millisecond to a week.
_TICK_STEPS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
)  # fmt: skip
# Red ticks drawn for failures hidden in a "+N more" row, at most.
_MAX_HIDDEN_MARKS = 100

_CSS = f"""
*{{box-sizing:border-box}}
body{{margin:0;font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;
color:#222;background:#fff}}
header{{padding:12px 16px 8px;border-bottom:1px solid #ddd}}
h1{{font-size:17px;margin:0 0 4px}}
.meta{{margin:0;color:#555}}
.err{{margin:4px 0 0;color:{FAILED}}}
.legend{{display:flex;flex-wrap:wrap;gap:4px 14px;margin:8px 0 0;padding:0;
list-style:none;color:#555;font-size:12px}}
.legend i{{display:inline-block;width:18px;height:4px;margin-right:5px;
vertical-align:middle}}
.badge{{font-size:12px;padding:1px 6px;border-radius:3px;color:#fff;
vertical-align:middle}}
.tl{{--lab:340px;padding:0 0 24px}}
.row{{display:grid;grid-template-columns:var(--lab) 1fr;min-height:20px}}
.row:hover{{background:rgba(0,0,0,.04)}}
.lab{{display:flex;align-items:center;gap:4px;padding:0 8px 0 4px;
white-space:nowrap;overflow:hidden;border-right:1px solid #e4e4e4}}
.lab .n{{overflow:hidden;text-overflow:ellipsis}}
.lab .k{{color:#888;font-size:11px}}
.lab .d{{margin-left:auto;color:#666;font-size:11px;padding-left:6px}}
.tog{{width:14px;border:0;background:none;padding:0;cursor:pointer;
color:#666;font-size:10px}}
.tog:empty{{cursor:default}}
.dot{{width:8px;height:8px;border-radius:50%;flex:none}}
.trk{{position:relative;margin-right:16px}}
.rows{{position:relative}}
.bands{{position:absolute;top:0;bottom:0;left:var(--lab);right:16px;
pointer-events:none}}
.band{{position:absolute;top:0;bottom:0;min-width:1px;background:{BAND}}}
.band.f{{background:{BAND_FAILED}}}
.bar{{position:absolute;top:4px;height:12px;min-width:2px;border-radius:2px}}
.bar.ctx{{top:7px;height:6px}}
.bar.multi{{background:none}}
.bar.open{{border-right:2px dashed #777}}
.seg{{position:absolute;top:0;bottom:0;min-width:3px}}
.seg.gap{{background:repeating-linear-gradient(135deg,#ccc 0 2px,#fff 2px 5px)}}
.mark{{position:absolute;top:-4px;width:0;height:0;margin-left:-4px;
border:4px solid transparent;border-top:5px solid {RETRY_MARK}}}
.crash{{position:absolute;top:-3px;bottom:-3px;width:2px;margin-left:-1px;
background:{FAILED}}}
.more .n{{color:#666;font-style:italic}}
.hid{{position:absolute;top:8px;height:4px;background:#ccc}}
.tick{{position:absolute;top:0;height:100%;border-left:1px solid #e8e8e8}}
.axis{{position:sticky;top:0;background:#fff;z-index:2;
border-bottom:1px solid #ddd;height:24px}}
.axis .tick span{{position:absolute;top:4px;left:3px;color:#666;
font-size:11px;white-space:nowrap}}
.axis .tick.end span{{left:auto;right:3px}}
.grid{{position:absolute;top:0;bottom:0;left:var(--lab);right:16px;
pointer-events:none}}
.s-ok{{background:{OK}}}.s-fail{{background:{FAILED}}}
.s-run{{background:{RUNNING}}}.s-halt{{background:{CANCELLED}}}
.s-wait{{background:{WAITING}}}.s-cb{{background:{CALLBACK_OK}}}
.s-inv{{background:{INVOKE_OK}}}.s-ctx{{background:{CONTEXT_OK}}}
.s-call{{background:{INVOCATION}}}
[hidden]{{display:none}}
footer{{padding:0 16px 16px;color:#888;font-size:11px}}
"""

# Folds a row's subtree, and unfolds it keeping folded rows folded.
_SCRIPT = """
document.querySelectorAll('.tog:not(:empty)').forEach(function (b) {
  b.onclick = function () {
    var row = b.closest('.row'), depth = +row.dataset.depth;
    var closing = !row.classList.contains('closed');
    row.classList.toggle('closed');
    b.textContent = closing ? '\\u25b8' : '\\u25be';
    var skip = Infinity;
    for (var r = row.nextElementSibling; r; r = r.nextElementSibling) {
      var d = +r.dataset.depth;
      if (!(d > depth)) break;
      if (closing) { r.hidden = true; continue; }
      if (d > skip) continue;
      skip = Infinity;
      r.hidden = false;
      if (r.classList.contains('closed')) skip = d;
    }
  };
});
"""


def render(
    tree: ExecutionTree, *, title: str | None, max_children: int, max_rows: int
) -> str:
    """The page; see :func:`durable_exec.history.render_html`."""
    page = _Page(tree, max_children, max_rows)
    name = tree.name or tree.execution_id or "execution"
    title = title if title is not None else f"{name}: durable execution history"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<style>{_CSS}</style></head><body>",
        page.header(name),
        '<main class="tl">',
        page.axis(),
        '<div class="rows">',
        page.grid(),
        page.bands(),
        page.invocation_row(),
        *page.operation_rows(),
        "</div></main>",
        f"<footer>{_e(page.footer())}</footer>",
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


class _Page:
    """Places times on the axis and writes the page's pieces."""

    def __init__(self, tree: ExecutionTree, max_children: int, max_rows: int) -> None:
        self.tree = tree
        self.max_children = max_children
        self.max_rows = max_rows
        self.rows = 0
        self.hidden = 0

        # The axis runs from the start to the last thing known to happen,
        # a wait or retry still due included.
        self.now = tree.end or tree.last_event_at
        moments = [tree.start, self.now]
        for node in tree.walk():
            moments += [node.start, node.end, node.next_attempt_at]
            if node.status is OperationStatus.STARTED:
                moments.append(node.scheduled_end)
        for invocation in tree.invocations:
            moments += [invocation.start, invocation.end]
        known = [moment for moment in moments if moment is not None]
        self.origin = min(known) if known else None
        last = max(known) if known else None
        span = (last - self.origin).total_seconds() if last and self.origin else 0
        self.span = max(span, 0.001)

    # -- geometry -----------------------------------------------------------

    def seconds(self, moment: _dt.datetime) -> float:
        assert self.origin is not None
        return (moment - self.origin).total_seconds()

    def pct(self, moment: _dt.datetime) -> float:
        return min(100.0, max(0.0, self.seconds(moment) / self.span * 100))

    def place(self, start: _dt.datetime, end: _dt.datetime) -> str:
        left = self.pct(start)
        width = max(0.0, self.pct(end) - left)
        return f"left:{left:.3f}%;width:{width:.3f}%"

    def offset(self, moment: _dt.datetime | None) -> str:
        if moment is None or self.origin is None:
            return "-"
        return "+" + format_duration(self.seconds(moment))

    # -- pieces -------------------------------------------------------------

    def header(self, name: str) -> str:
        tree = self.tree
        status = tree.status.value
        colour = {
            ExecutionStatus.SUCCEEDED: "s-ok",
            ExecutionStatus.RUNNING: "s-run",
            ExecutionStatus.STOPPED: "s-halt",
        }.get(tree.status, "s-fail")
        facts = []
        if tree.start is not None:
            facts.append(f"started {tree.start:%Y-%m-%d %H:%M:%S} UTC")
        if tree.duration is not None:
            facts.append(f"took {format_duration(tree.duration.total_seconds())}")
        failed = sum(invocation.failed for invocation in tree.invocations)
        invocations = f"{len(tree.invocations)} invocations"
        if failed:
            invocations += f" ({failed} failed)"
        facts += [invocations, f"{sum(1 for _ in tree.walk())} operations"]
        lines = [
            "<header>",
            f'<h1>{_e(name)} <span class="badge {colour}">{status}</span></h1>',
            f'<p class="meta">{_e(" · ".join(facts))}</p>',
        ]
        if tree.error is not None:
            lines.append(f'<p class="err">{_e(_error_text(tree.error))}</p>')
        legend = (
            ("s-ok", "succeeded"),
            ("s-fail", "failed / timed out"),
            ("s-run", "running"),
            ("s-halt", "cancelled / stopped"),
            ("s-wait", "wait"),
            ("s-cb", "callback"),
            ("s-inv", "invoke"),
            ("s-ctx", "context"),
            ("s-call", "invocation"),
        )
        items = "".join(f'<li><i class="{css}"></i>{text}</li>' for css, text in legend)
        lines += [f'<ul class="legend">{items}</ul>', "</header>"]
        return "\n".join(lines)

    def ticks(self) -> Iterator[tuple[float, str]]:
        raw = self.span / _TICKS
        step = next((s for s in _TICK_STEPS if s >= raw), _TICK_STEPS[-1])
        count = math.floor(self.span / step + 1e-9)
        for index in range(count + 1):
            at = index * step
            yield at / self.span * 100, _tick_label(at, step)

    def axis(self) -> str:
        # A label near the right edge goes left of its line, in view.
        ticks = "".join(
            f'<div class="tick{" end" if left > 92 else ""}" '
            f'style="left:{left:.3f}%"><span>{label}</span></div>'
            for left, label in self.ticks()
        )
        return (
            '<div class="row axis"><div class="lab"><b>operation</b></div>'
            f'<div class="trk">{ticks}</div></div>'
        )

    def grid(self) -> str:
        lines = "".join(
            f'<div class="tick" style="left:{left:.3f}%"></div>'
            for left, _ in self.ticks()
        )
        return f'<div class="grid">{lines}</div>'

    def bands(self) -> str:
        bands = []
        for invocation in self.tree.invocations:
            if invocation.start is None or invocation.end is None:
                continue
            css = "band f" if invocation.failed else "band"
            place = self.place(invocation.start, invocation.end)
            bands.append(f'<div class="{css}" style="{place}"></div>')
        return f'<div class="bands">{"".join(bands)}</div>'

    def invocation_row(self) -> str:
        if not self.tree.invocations:
            return ""
        bars = []
        for invocation in self.tree.invocations:
            if invocation.start is None or invocation.end is None:
                continue
            css = "s-fail" if invocation.failed else "s-call"
            bars.append(
                f'<div class="bar {css}" data-invocation="{invocation.number}" '
                f'style="{self.place(invocation.start, invocation.end)}" '
                f'title="{_e(self.invocation_title(invocation))}"></div>'
            )
        count = len(self.tree.invocations)
        return (
            '<div class="row inv" data-depth="0"><div class="lab">'
            '<button class="tog"></button><span class="dot s-call"></span>'
            f'<span class="n">invocations</span><span class="d">{count}</span>'
            f'</div><div class="trk">{"".join(bars)}</div></div>'
        )

    def invocation_title(self, invocation: Invocation) -> str:
        lines = [
            f"invocation {invocation.number}",
            f"start {self.offset(invocation.start)}, took "
            + _duration(invocation.start, invocation.end),
        ]
        if invocation.request_id:
            lines.append(f"request {invocation.request_id}")
        if invocation.error is not None:
            lines.append(_error_text(invocation.error))
        return "\n".join(lines)

    def operation_rows(self) -> Iterator[str]:
        yield from self._rows(self.tree.operations, 0)

    def _rows(self, nodes: Sequence[OperationNode], depth: int) -> Iterator[str]:
        for index, node in enumerate(nodes):
            if index >= self.max_children or self.rows >= self.max_rows:
                yield self.more_row(nodes[index:], depth)
                return
            self.rows += 1
            yield self.row(node, depth)
            yield from self._rows(node.children, depth + 1)

    def row(self, node: OperationNode, depth: int) -> str:
        title = _e(self.title(node))
        toggle = "\u25be" if node.children else ""
        duration = _duration(node.start, node.end) if node.end else node.status.value
        label = (
            f'<div class="lab" style="padding-left:{4 + depth * 14}px" '
            f'title="{title}"><button class="tog">{toggle}</button>'
            f'<span class="dot {_status_css(node)}"></span>'
            f'<span class="n">{_e(node.label)}</span>'
            f'<span class="k">{_e(node.kind)}</span>'
            f'<span class="d">{_e(duration)}</span></div>'
        )
        return (
            f'<div class="row" data-depth="{depth}" data-op="{_e(node.id)}">'
            f'{label}<div class="trk">{self.bar(node, title)}</div></div>'
        )

    def bar(self, node: OperationNode, title: str) -> str:
        if node.start is None:
            return ""
        end = node.end
        css = ["bar", _bar_css(node)]
        if end is None:
            # Still running: draw up to when it is due, or to the last event.
            end = node.scheduled_end or node.next_attempt_at or self.now or node.start
            css.append("open")
        if node.type == CONTEXT:
            css.append("ctx")
        inner = ""
        if len(node.attempts) > 1 or any(a.interruptions for a in node.attempts):
            inner = self.attempts(node, end)
            if inner:
                css.append("multi")
        return (
            f'<div class="{" ".join(css)}" data-op="{_e(node.id)}" '
            f'style="{self.place(node.start, end)}" title="{title}">{inner}</div>'
        )

    def attempts(self, node: OperationNode, end: _dt.datetime) -> str:
        """A step's attempts and retry delays, placed inside its bar."""
        start = node.start
        assert start is not None
        total = (end - start).total_seconds()
        if total <= 0:
            return ""

        def at(moment: _dt.datetime) -> float:
            return (moment - start).total_seconds() / total * 100

        # Gaps first: an attempt of a millisecond is drawn over their edge.
        gaps: list[str] = []
        segments: list[str] = []
        for index, attempt in enumerate(node.attempts):
            if attempt.start is None:
                continue
            stop = attempt.end or end
            css = {
                OperationStatus.SUCCEEDED: "s-ok",
                OperationStatus.FAILED: "s-fail",
            }.get(attempt.status, "s-run")
            left = at(attempt.start)
            segments.append(
                f'<div class="seg {css}" style="left:{left:.3f}%;'
                f'width:{at(stop) - left:.3f}%" '
                f'title="{_e(self.attempt_title(node, attempt))}"></div>'
            )
            if attempt.interruptions:
                segments += self.crashes(attempt.start, stop, at)
            if attempt.retry_delay_seconds is None or attempt.end is None:
                continue

            # The delay: to the next attempt, or to when it is due.
            following = node.attempts[index + 1 :]
            resume = following[0].start if following else None
            if resume is None:
                resume = min(
                    end,
                    attempt.end + _dt.timedelta(seconds=attempt.retry_delay_seconds),
                )
            gap_left = at(attempt.end)
            delay = f"retry delay {attempt.retry_delay_seconds} s"
            gaps.append(
                f'<div class="seg gap" style="left:{gap_left:.3f}%;'
                f'width:{max(0.0, at(resume) - gap_left):.3f}%" '
                f'title="{delay}"></div>'
            )
            segments.append(
                f'<div class="mark" style="left:{gap_left:.3f}%" title="{delay}"></div>'
            )
        return "".join(gaps + segments)

    def crashes(
        self,
        start: _dt.datetime,
        stop: _dt.datetime,
        at: Callable[[_dt.datetime], float],
    ) -> list[str]:
        """A red tick where a failed invocation ended during an attempt."""
        ticks = []
        for invocation in self.tree.invocations:
            end = invocation.end
            if invocation.error is None or end is None or not start <= end <= stop:
                continue
            text = f"invocation {invocation.number} failed: "
            ticks.append(
                f'<div class="crash" style="left:{at(end):.3f}%" '
                f'title="{_e(text + _error_text(invocation.error))}"></div>'
            )
        return ticks

    def more_row(self, nodes: Sequence[OperationNode], depth: int) -> str:
        """One row for siblings left out, with their span on the axis."""
        hidden = [descendant for node in nodes for descendant in node.walk()]
        self.hidden += len(hidden)
        counts: dict[str, int] = {}
        for node in nodes:
            counts[node.status.value] = counts.get(node.status.value, 0) + 1
        summary = ", ".join(f"{count} {status}" for status, count in counts.items())
        title = (
            f"{len(nodes)} more operations here ({summary}); "
            f"{len(hidden)} in all with what they contain"
        )
        starts = [node.start for node in nodes if node.start is not None]
        ends = [node.end or self.now for node in nodes if node.start is not None]
        track = ""
        if starts:
            first = min(starts)
            last = max((end for end in ends if end is not None), default=first)
            track = f'<div class="hid" style="{self.place(first, last)}"></div>'
        failures = [
            node
            for node in hidden
            if node.status in _FAILED_STATUSES and node.start is not None
        ]
        for node in failures[:_MAX_HIDDEN_MARKS]:
            assert node.start is not None
            track += (
                f'<div class="seg s-fail" style="left:{self.pct(node.start):.3f}%;'
                f'top:5px;height:10px" title="{_e(node.label)}: '
                f'{_e(node.status.value)}"></div>'
            )
        return (
            f'<div class="row more" data-depth="{depth}">'
            f'<div class="lab" style="padding-left:{4 + depth * 14}px" '
            f'title="{_e(title)}"><button class="tog"></button>'
            f'<span class="n">+{len(nodes)} more</span>'
            f'<span class="d">{_e(summary)}</span></div>'
            f'<div class="trk">{track}</div></div>'
        )

    def title(self, node: OperationNode) -> str:
        lines = [f"{node.label} ({node.kind}, id {node.id})"]
        status = node.status.value
        if node.attempts and (len(node.attempts) > 1 or node.failed_attempts):
            status += f" after {len(node.attempts)} attempts"
        lines.append(status)
        lines.append(
            f"start {self.offset(node.start)}, duration "
            + (_duration(node.start, node.end) if node.end else "-")
        )
        if node.wait_seconds is not None:
            lines.append(f"wait {node.wait_seconds} s")
        if node.timeout_seconds is not None:
            lines.append(f"timeout {node.timeout_seconds} s")
        if node.heartbeat_timeout_seconds is not None:
            lines.append(f"heartbeat timeout {node.heartbeat_timeout_seconds} s")
        if node.function_name:
            lines.append(f"invokes {node.function_name}")
        if node.next_attempt_at is not None:
            lines.append(f"next attempt at {self.offset(node.next_attempt_at)}")
        if len(node.attempts) > 1:
            lines += [self.attempt_title(node, a) for a in node.attempts]
        if node.failed_items:
            listed = ", ".join(map(str, node.failed_items))
            lines.append(f"failed items: {listed}")
        if node.error is not None:
            lines.append(_error_text(node.error))
        return "\n".join(lines)

    def attempt_title(self, node: OperationNode, attempt: Attempt) -> str:
        text = (
            f"attempt {attempt.number}: {attempt.status.value} at "
            f"{self.offset(attempt.start)}"
        )
        if attempt.end is not None:
            text += f" after {_duration(attempt.start, attempt.end)}"
        if attempt.error is not None:
            text += f", {_error_text(attempt.error)}"
        if attempt.retry_delay_seconds is not None:
            again = "check again" if node.sub_type == "WaitForCondition" else "retry"
            text += f", {again} in {attempt.retry_delay_seconds} s"
        if attempt.interruptions:
            text += f", in flight when {attempt.interruptions} invocation(s) failed"
        return text

    def footer(self) -> str:
        text = f"durable-exec history · {self.tree.event_count} events"
        if self.hidden:
            text += f" · {self.hidden} operations summed up in '+N more' rows"
        return text


def _status_css(node: OperationNode) -> str:
    if node.status in _FAILED_STATUSES or node.failed_items:
        return "s-fail"
    if node.status in _HALTED_STATUSES:
        return "s-halt"
    if node.status is OperationStatus.SUCCEEDED:
        return "s-ok"
    return "s-run"


def _bar_css(node: OperationNode) -> str:
    """The bar's colour: red on failure; otherwise by type and status."""
    failed = node.status in _FAILED_STATUSES or bool(node.failed_items)
    if node.type == CONTEXT:
        return "s-fail" if failed else "s-ctx"
    if failed:
        return "s-fail"
    if node.status in _HALTED_STATUSES:
        return "s-halt"
    if node.type == WAIT:
        return "s-wait"
    if node.status is not OperationStatus.SUCCEEDED:
        return "s-run"
    return {CALLBACK: "s-cb", CHAINED_INVOKE: "s-inv"}.get(node.type, "s-ok")


def _tick_label(seconds: float, step: float) -> str:
    if seconds == 0:
        return "0"
    if step < 1:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    if step < 60:
        return f"{seconds:g}s"
    return format_duration(seconds)


def _duration(start: _dt.datetime | None, end: _dt.datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return format_duration((end - start).total_seconds())


def _error_text(error: ErrorObject) -> str:
    text = error.error_type or "Error"
    if error.error_message:
        text += f": {error.error_message}"
    return text


def _e(text: str) -> str:
    return html.escape(text, quote=True)
