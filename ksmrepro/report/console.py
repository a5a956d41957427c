"""The console report (rich).

Colour only on a terminal and never under ``NO_COLOR`` (rich decides both); all
user text goes through :class:`rich.text.Text`, never markup, so a ``[model]`` in a
message stays as written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ksmrepro.report.text import (
    STATUS_WORDS,
    failure_text,
    step_op,
    step_title,
    summary_line,
    value_text,
)

if TYPE_CHECKING:
    from ksmrepro.report import RunRecord
    from ksmrepro.runner.results import Observation, StepFailure

__all__ = [
    "dump_renderable",
    "make_console",
    "print_report",
    "render_run",
    "render_summary",
    "run_renderable",
    "trace_renderable",
]

STATUS_STYLES = {
    "passed": "green",
    "failed": "bold red",
    "known-failure": "yellow",
    "unexpected-pass": "bold magenta",
    "error": "bold red",
}
VERDICT_STYLES = {
    "ok": "green",
    "FAIL": "bold red",
    "known failure": "yellow",
    "unexpected pass": "bold magenta",
}


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr): plain when not a terminal, no colour under NO_COLOR."""
    return Console(stderr=stderr, highlight=False, emoji=False)


def _verdict(obs: Observation, status: str) -> str:
    if obs.ok is None:
        return ""
    if obs.ok:
        return "unexpected pass" if status == "unexpected-pass" else "ok"
    return "known failure" if status == "known-failure" else "FAIL"


def _lines(cells: Sequence[str], differs: Sequence[bool], style: str) -> Text:
    text = Text()
    for i, (cell, bad) in enumerate(zip(cells, differs, strict=True)):
        if i:
            text.append("\n")
        text.append(cell, style=style if bad else "")
    return text


def _observation_row(record: RunRecord, obs: Observation) -> list[RenderableType]:
    expected = obs.expected or {}
    names = list(expected) + [k for k in obs.values if k not in expected]
    differs = [n in obs.failed_keys for n in names]
    verdict = _verdict(obs, record.result.status)
    op = step_op(record.scenario, obs.step) or obs.op
    return [
        Text(obs.label or str(obs.step)),
        Text(op),
        _lines(names, differs, "bold"),
        _lines([value_text(expected.get(n)) if obs.expected is not None else "" for n in names],
               differs, "bold"),
        _lines([value_text(obs.values.get(n)) for n in names], differs, "bold red"),
        Text(verdict, style=VERDICT_STYLES.get(verdict, "")),
    ]


def _outcome_row(record: RunRecord, outcome: StepFailure) -> list[RenderableType]:
    what = outcome.errno or outcome.signal or "failed"
    return [
        Text(outcome.label or str(outcome.step)),
        Text(step_op(record.scenario, outcome.step) or ""),
        Text(f"{what} (asked for)" if outcome.expected else f"{what} (recorded)"),
        Text(""),
        Text(""),
        Text("ok", style=VERDICT_STYLES["ok"]),
    ]


def _status_line(record: RunRecord) -> Text:
    result = record.result
    status = result.status
    style = STATUS_STYLES.get(status, "")
    reason = " ".join((result.known_failure_reason or "").split())
    error = result.error
    op = step_op(record.scenario, error.step) if error is not None else None
    if record.kernel_bug is not None:
        where = f"{step_title(error.step, op, error.label)}: " if error is not None else ""
        return Text(f"KERNEL BUG: {where}{record.kernel_bug}", style="bold red")
    if status == "known-failure":
        return Text(f"known failure: {reason}", style=style)
    if status == "unexpected-pass":
        return Text(f"UNEXPECTED PASS: known_failures says this fails here: {reason}", style=style)
    if error is not None and status != "passed":
        return Text(f"{STATUS_WORDS.get(status, status)}: {failure_text(error, op)}", style=style)
    judged = [o for o in result.observations if o.ok is not None]
    failed = [o for o in judged if o.ok is False]
    if failed:
        word = STATUS_WORDS.get(status, status)
        return Text(f"{word}: {len(failed)} of {len(judged)} expectations failed", style=style)
    return Text(STATUS_WORDS.get(status, status), style=style)


def _scalar(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


def _value_renderable(key: str, value: Any) -> RenderableType:
    if isinstance(value, dict):
        return Group(Text(f"{key}:"), Padding(_mapping_renderable(value), (0, 0, 0, 2), expand=False))
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        columns: list[str] = []
        for row in value:
            columns += [c for c in row if c not in columns]
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in value:
            table.add_row(*[_scalar(row[c]) if c in row else "" for c in columns])
        return Group(Text(f"{key}:"), Padding(table, (0, 0, 0, 2), expand=False))
    if isinstance(value, (list, tuple)):
        return Text(f"{key}: " + (", ".join(_scalar(v) for v in value) if value else "(none)"))
    return Text(f"{key}: {_scalar(value)}")


def _mapping_renderable(mapping: dict[str, Any]) -> RenderableType:
    return Group(*[_value_renderable(str(k), v) for k, v in mapping.items()])


def dump_renderable(dump: dict[str, Any]) -> RenderableType:
    """A ``dump`` step's state, rendered generically: ``key: value``, lists of dicts as tables."""
    from ksmrepro.report.text import dump_lines

    try:  # the simulated kernel's dump; anything else is rendered generically below
        first, *rest_lines = dump_lines(dump)
    except (KeyError, TypeError, AttributeError):
        pass
    else:
        return Group(Text(first, style="bold"), *[Text(x, no_wrap=True, overflow="fold")
                                                  for x in rest_lines])
    title = f"dump after step {dump.get('step', '?')}"
    if "proc" in dump:
        title += f" ({dump['proc']})"
    rest = {k: v for k, v in dump.items() if k not in ("step", "proc")}
    return Group(Text(title, style="bold"), Padding(_mapping_renderable(rest), (0, 0, 0, 2), expand=False))


def trace_renderable(record: RunRecord) -> RenderableType:
    """The run's trace events, one line each (``time ms  step N  event: text``); an event's
    detail lines (an rmap walk's items and vmas) follow it, indented, at full width."""
    lines: list[RenderableType] = [Text(f"trace ({len(record.result.trace)} events)",
                                        style="bold")]
    for ev in record.result.trace:
        first, *rest = ev.text.split("\n")
        head = Text(f"{ev.time_ns / 1e6:12.3f} ms  step {ev.step:<3} ")
        head.append(ev.event, style="bold")
        head.append(f": {first}")
        lines.append(head)
        for r in rest:
            lines.append(Text(" " * 17 + r, style="MISSED" in r and "red" or ""))
    return Group(*lines)


def run_renderable(record: RunRecord, *, trace: bool = False) -> RenderableType:
    """One run: a header (name, file, model), one row per observation, the run's status."""
    result = record.result
    header = Text()
    header.append(result.scenario, style="bold")
    header.append(f"  {result.file}  on ")
    header.append(result.model, style="bold cyan")
    if result.ksmd_phase:
        header.append(f", ksmd phase {result.ksmd_phase}")
    parts: list[RenderableType] = [header]
    rows: list[tuple[int, list[RenderableType]]] = [
        (o.step, _observation_row(record, o)) for o in result.observations
    ]
    rows += [(o.step, _outcome_row(record, o)) for o in result.step_outcomes]
    if rows:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("step", justify="right")
        table.add_column("op")
        table.add_column("counter")
        table.add_column("expected", justify="right")
        table.add_column("seen", justify="right")
        table.add_column("verdict")
        for _, cells in sorted(rows, key=lambda r: r[0]):
            table.add_row(*cells)
        parts.append(Padding(table, (0, 0, 0, 2), expand=False))
    parts.append(Padding(_status_line(record), (0, 0, 0, 2), expand=False))
    parts += [Padding(dump_renderable(d), (0, 0, 0, 2), expand=False) for d in result.dumps]
    if trace:
        parts.append(Padding(trace_renderable(record), (0, 0, 0, 2), expand=False))
    return Group(*parts)


def render_run(console: Console, record: RunRecord, *, trace: bool = False) -> None:
    console.print(run_renderable(record, trace=trace))


def _status_cell(run: RunRecord) -> Text:
    status = run.result.status
    word = "KERNEL BUG" if run.kernel_bug else STATUS_WORDS.get(status, status)
    return Text(word, style=STATUS_STYLES.get(status, ""))


def _summary_table(console: Console, by_scenario: dict[tuple[str, str], dict[str, RunRecord]],
                   models: list[str]) -> Table:
    # A grid (scenario rows, model columns) when it fits the console; one row per
    # run otherwise, so that model names are never folded.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title="summary",
                  title_justify="left")
    name_width = max(len("scenario"), *(len(name) for _, name in by_scenario))
    grid_width = name_width + sum(max(len(m), len("known failure")) + 3 for m in models)
    table.add_column("scenario", no_wrap=True)
    if grid_width <= console.width:
        for m in models:
            table.add_column(m, no_wrap=True)
        for (_, name), runs in by_scenario.items():
            cells = [_status_cell(runs[m]) if m in runs else Text("") for m in models]
            table.add_row(Text(name), *cells)
        return table
    table.add_column("model", overflow="fold")
    table.add_column("status", no_wrap=True)
    for (_, name), runs in by_scenario.items():
        for m, run in runs.items():
            table.add_row(Text(name), Text(m), _status_cell(run))
    return table


def render_summary(console: Console, records: Sequence[RunRecord]) -> None:
    """The scenario × model table (when a scenario ran on several models) and the totals."""
    by_scenario: dict[tuple[str, str], dict[str, RunRecord]] = {}
    models: list[str] = []
    for r in records:
        by_scenario.setdefault((r.result.file, r.result.scenario), {})[r.result.model] = r
        if r.result.model not in models:
            models.append(r.result.model)
    if any(len(runs) > 1 for runs in by_scenario.values()):
        console.print(_summary_table(console, by_scenario, models))
    failing = any(r.failing for r in records)
    console.print(Text(summary_line(records), style="bold red" if failing else "bold green"))


def print_report(console: Console, records: Sequence[RunRecord], *, trace: bool = False) -> None:
    """The whole console report: every run, then the summary."""
    for record in records:
        render_run(console, record, trace=trace)
        console.print()
    render_summary(console, records)
