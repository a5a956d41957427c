"""Rich renderables for ``models``, ``compare`` and ``bisect`` (the CLI prints them).

As in ``report.console``: every piece of user text goes through :class:`rich.text.Text`, never
markup; colour only on a terminal.  Model names in column headers are broken at ``+`` so that
a table of three long model expressions still fits 80 columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ksmrepro.analysis.bisect import Bisection, Change, PointOutcome
    from ksmrepro.analysis.compare import Comparison
    from ksmrepro.analysis.phases import PhaseSweep
    from ksmrepro.analysis.tracediff import TraceDivergence
    from ksmrepro.models.base import Model, Patch
    from ksmrepro.runner.results import TraceEvent

__all__ = [
    "bisection_renderable",
    "comparison_renderable",
    "model_renderable",
    "patch_renderable",
    "phase_summary_line",
    "phase_sweep_renderable",
    "print_wide",
    "registry_renderable",
    "trace_divergence_lines",
]

DIVERGE = "bold yellow"
DIFFERS = "bold"
FAILED = "red"
MISSED = "red"


def _indent(r: RenderableType, n: int = 2) -> Padding:
    return Padding(r, (0, 0, 0, n), expand=False)


def _header(name: str) -> Text:
    # "mm-2026-04+ksm-pte-mkold" -> "mm-2026-04\n+ksm-pte-mkold"
    first, *rest = name.split("+")
    return Text("\n".join([first, *("+" + r for r in rest)]), style="bold cyan")


class _WideTable(Table):
    """A table whose every column must show in full (:func:`print_wide` makes room)."""


def _table(*, wide: bool = False, **kw: Any) -> Table:
    kw.setdefault("box", box.SIMPLE_HEAD)
    return (_WideTable if wide else Table)(show_edge=False, pad_edge=False, **kw)


def _step_title(step: int, op: str | None, label: str | None) -> str:
    title = f'step {step} "{label}"' if label else f"step {step}"
    return f"{title} ({op})" if op else title


# --- compare -------------------------------------------------------------------------------


def comparison_renderable(cmp: Comparison) -> RenderableType:
    """The compare table: a row per counter, a column per model, the first divergence marked
    (``>>`` and highlighted), then the outcome of each model and a line naming the first
    divergence.  The traces' divergence is :func:`trace_divergence_lines`."""
    head = Text()
    head.append(cmp.scenario, style="bold")
    head.append(f"  {cmp.file}  on {len(cmp.models)} models")
    table = _table(wide=True, collapse_padding=True)
    table.add_column("", no_wrap=True)  # the first-divergence marker
    table.add_column("step", justify="right", no_wrap=True)
    table.add_column("op", no_wrap=True)
    table.add_column("counter", no_wrap=True)
    table.add_column("expected", justify="right", no_wrap=True)
    for m in cmp.models:
        table.add_column(_header(m), justify="right", no_wrap=True)
    last_step = None
    for row in cmp.rows:
        first = row.step == cmp.first_divergent_step
        style = DIVERGE if first else ""
        new_step = row.step != last_step
        last_step = row.step
        cells: list[RenderableType] = [
            Text(">>" if first and new_step else "", style=DIVERGE),
            Text(str(row.step) if new_step else "", style=style),
            Text((row.label or row.op) if new_step else "", style=style),
            Text(row.counter, style=style),
            Text(row.expected, style=style),
        ]
        for value, failed in zip(row.values, row.failed, strict=True):
            vs = " ".join(s for s in (style, DIFFERS if row.differs else "",
                                      FAILED if failed else "") if s)
            cells.append(Text(value, style=vs))
        table.add_row(*cells)
    outcome: list[RenderableType] = [Text(""), Text(""), Text(""), Text("outcome"), Text("")]
    for r, ok in zip(cmp.results, cmp.raw_ok, strict=True):
        outcome.append(Text(_status_word(r.status), style="green" if ok else "bold red"))
    table.add_section()
    table.add_row(*outcome)
    return Group(head, _indent(table), _indent(_divergence_line(cmp)))


def _status_word(status: str) -> str:
    from ksmrepro.report.text import STATUS_WORDS

    return STATUS_WORDS.get(status, status)


def _divergence_line(cmp: Comparison) -> Text:
    if cmp.first_divergent_step is None:
        if cmp.same:
            return Text("every observation is the same on every model", style="green")
        return Text("the observations are the same, the outcomes differ", style=DIVERGE)
    rows = [r for r in cmp.rows if r.step == cmp.first_divergent_step]
    r0 = rows[0]
    text = Text("first divergence: ", style=DIVERGE)
    text.append(_step_title(r0.step, r0.op, r0.label))
    text.append(f" at {cmp.file}:{r0.line}" if r0.line else "")
    for r in rows:
        if r.differs:
            text.append(f"; {r.counter}: ")
            text.append(", ".join(f"{v} on {m}" for v, m in zip(r.values, cmp.models,
                                                                  strict=True)))
    return text


# --- phases --------------------------------------------------------------------------------


def _phase_values(ps: PhaseSweep, dist: list[tuple[str, list[int]]]) -> Text:
    from ksmrepro.analysis.phases import phase_ranges

    if len(dist) == 1:
        return Text(f"{dist[0][0]} at every phase")
    text = Text()
    for k, (value, ix) in enumerate(dist):
        if k:
            text.append("; ")
        text.append(value, style=DIFFERS)
        text.append(f" at {phase_ranges(ix, ps.n)} ({len(ix)} of {ps.n})")
    return text


def _statuses_text(ps: PhaseSweep) -> Text:
    return _phase_values(ps, [(_status_word(s), ix) for s, ix in ps.status_distribution()])


def _plural(n: int, noun: str, verb: str) -> str:
    """``3 printed values differ``, ``1 printed value differs``."""
    return f"{n} {noun}{'s' if n != 1 else ''} {verb}{'' if n != 1 else 's'}"


def phase_summary_line(ps: PhaseSweep) -> Text:
    """One line for a sweep among many: the scenario, the model and what depends on the phase."""
    text = Text()
    text.append(ps.scenario, style="bold")
    text.append(f"  {ps.file}  on {ps.model}: ")
    if ps.outcome_dependent:
        text.append("timing-dependent: ", style=DIVERGE)
        text.append_text(_statuses_text(ps))
    elif ps.timing_dependent:
        text.append(f"{_status_word(ps.statuses[0])} at every phase; "
                    f"{_plural(ps.rows_differing, 'printed value', 'differ')}")
    else:
        text.append(f"{_status_word(ps.statuses[0])} at every phase, every value the same",
                    style="green")
    return text


def phase_sweep_renderable(ps: PhaseSweep) -> RenderableType:
    """A row per counter (as ``compare``), its values over the phases instead of a column per
    model; the rows that depend on the phase highlighted, then the statuses over the phases."""
    head = Text()
    head.append(ps.scenario, style="bold")
    head.append(f"  {ps.file}  on {ps.model}, ksmd at {ps.n} phases")
    table = _table(collapse_padding=True)
    table.add_column("step", justify="right", no_wrap=True)
    table.add_column("op", no_wrap=True)
    table.add_column("counter", no_wrap=True)
    table.add_column("expected", justify="right", no_wrap=True)
    table.add_column("seen")
    last_step = None
    for row in ps.rows:
        style = DIVERGE if row.differs else ""
        new_step = row.step != last_step
        last_step = row.step
        table.add_row(Text(str(row.step) if new_step else "", style=style),
                      Text((row.label or row.op) if new_step else "", style=style),
                      Text(row.counter, style=style), Text(row.expected, style=style),
                      _phase_values(ps, ps.distribution(row)))
    table.add_section()
    table.add_row(Text(""), Text(""), Text("outcome"), Text(""), _statuses_text(ps))
    if ps.outcome_dependent:
        verdict = Text("timing-dependent: the outcome depends on where ksmd's passes fall "
                       "between the steps", style=DIVERGE)
    elif ps.timing_dependent:
        verdict = Text("the outcome is the same at every phase; "
                       f"{_plural(ps.rows_differing, 'observed value', 'depend')} on where "
                       "ksmd's passes fall", style=DIVERGE)
    else:
        verdict = Text("the same at every phase: where ksmd's passes fall does not decide it",
                       style="green")
    return Group(head, _indent(table), _indent(verdict))


def _event_lines(ev: TraceEvent, own: Sequence[int], indent: int, style: str = "") -> list[Text]:
    lines = ev.text.split("\n")
    head = Text(" " * indent + f"{ev.time_ns / 1e6:.3f} ms  step {ev.step}  ")
    head.append(ev.event, style="bold")
    head.append(": ")
    head.append(lines[0], style=DIFFERS if 0 in own and style else "")
    out = [head]
    for i, line in enumerate(lines[1:], start=1):
        st = " ".join(s for s in (DIFFERS if i in own and style else "",
                                  MISSED if "MISSED" in line else "") if s)
        out.append(Text(" " * (indent + 2) + line, style=st))
    return out


def trace_divergence_lines(td: TraceDivergence | None, *, indent: int = 2) -> list[Text]:
    """Where the models' kernel traces part, one line per Text (print them unwrapped): the
    last common event, then each side's event (lines only that side has in bold, MISSED vmas
    in red)."""
    pad = " " * indent
    if td is None:
        return [Text(pad + "traces: the same on every model (events compared by name and "
                     "text, not time)", style="green")]
    title = Text(pad)
    title.append(f"traces part at event #{td.index + 1}", style=DIVERGE)
    title.append(f" ({td.index} events in common, compared by name and text, not time)")
    out = [title]
    if td.common is not None:
        out.append(Text(pad + "  last common event:", style="bold"))
        out += _event_lines(td.common, (), indent + 4)
    for side in td.sides:
        who = Text(pad + "  on ", style="bold")
        who.append(", ".join(side.models), style="bold cyan")
        if side.event is None:
            who.append(": the trace ends here")
        else:
            n = side.remaining
            who.append(f" ({n} event{'s' if n != 1 else ''} from here to the end):")
        out.append(who)
        if side.event is not None:
            out += _event_lines(side.event, side.own_lines, indent + 4, DIFFERS)
    return out


# --- bisect --------------------------------------------------------------------------------


def _value_text(b: Bisection, o: PointOutcome) -> str:
    if o.skip is not None:
        return "skip"
    if b.observe is None:
        return "pass" if o.value == "pass" else "FAIL"
    if o.value is None:
        return "(not reached)"
    pairs: tuple[tuple[str, int], ...] = o.value  # type: ignore[assignment]
    return " ".join(f"{k}={v}" for k, v in pairs)


def _change_words(b: Bisection, c: Change) -> tuple[str, str]:
    before, after = b.outcomes[c.before], b.outcomes[c.after]
    if b.observe is not None:
        step = _step_title(b.observe, b.op(b.observe), b.observe_label)
        return "first patch that changes " + step, f"{_value_text(b, before)} -> " \
            f"{_value_text(b, after)}"
    if before.value == "pass":
        return "first bad patch", "pass -> FAIL"
    return "first good patch (the expectations hold from here)", "FAIL -> pass"


def patch_renderable(p: Patch, *, indent: int = 2) -> RenderableType:
    """A patch: title, then reference, function, what it sets, and the explanation."""
    rows = _table(show_header=False, box=None)
    rows.add_column(no_wrap=True, style="dim")
    rows.add_column(overflow="fold")
    rows.add_row("reference", Text(p.reference))
    if p.function:
        rows.add_row("function", Text(p.function))
    sets = ", ".join(f"{k}={_switch(v)}" for k, v in p.sets.items())
    if p.parts:
        sets = "the patches " + ", ".join(p.parts)
    if p.requires:
        rows.add_row("requires", Text(", ".join(p.requires)))
    rows.add_row("sets", Text(sets or "nothing (no behaviour change)"))
    if p.explanation:
        rows.add_row("explanation", Text(p.explanation))
    return _indent(Group(Text(p.title, style="bold"), rows), indent)


def _switch(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def bisection_renderable(b: Bisection) -> RenderableType:
    """The walk, a line per point, then the first change with its patch and the observation
    before and after, then any further change."""
    walk = b.walk
    head = Text()
    head.append(b.scenario, style="bold")
    head.append(f"  {b.file}")
    what = Text("bisect ")
    what.append(walk.title, style="bold")
    what.append(f": {len(walk.points) - 1} patches on {walk.start}")
    if walk.with_patches:
        what.append(", with ")
        what.append(", ".join(p.name for p in walk.with_patches), style="bold")
        what.append(" at every point")
    if b.observe is None:
        judged = Text("outcome: did every expectation hold (known_failures not consulted)")
    else:
        title = _step_title(b.observe, b.op(b.observe), b.observe_label)
        judged = Text(f"outcome: the values {title} reads")
    first = b.first
    later = {c.after for c in b.changes[1:]}
    table = _table(wide=True)
    table.add_column("", no_wrap=True)
    table.add_column("point", justify="right", no_wrap=True)
    table.add_column("patch applied", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("note", no_wrap=True)
    notes: list[Text] = []
    for o in b.outcomes:
        i = o.point.index
        mark = ">>" if first is not None and i == first.after else ("> " if i in later else "")
        name = o.point.patch.name if o.point.patch else f"{walk.start} (start)"
        value = _value_text(b, o)
        style = "bold red" if value in ("FAIL", "skip") else ("green" if value == "pass" else "")
        note = ""
        if o.skip is not None:
            note = "cannot run (below)"
            notes.append(Text(f"point {i} cannot run: {o.skip}", style="dim"))
        elif o.same_as is not None:
            note = f"not run: = point {o.same_as}"
            why = (f"it changes only {', '.join(o.unread)}, which the run of point "
                   f"{o.same_as} never read" if o.unread else
                   f"its switches are point {o.same_as}'s")
            notes.append(Text(f"point {i} not run: {why}, so its run would be the same",
                              style="dim"))
        table.add_row(Text(mark, style=DIVERGE), Text(str(i)), Text(name),
                      Text(value, style=style), Text(note, style="dim"))
    parts: list[RenderableType] = [head, _indent(what), _indent(judged), _indent(table),
                                   *(_indent(n) for n in notes)]
    if first is None:
        tested = [o for o in b.outcomes if o.skip is None]
        if len(tested) < 2:
            parts.append(_indent(Text("fewer than two points could run: nothing to compare",
                                      style="bold red")))
        else:
            word = _value_text(b, tested[0])
            parts.append(_indent(Text(
                f"no point of {walk.title} changes the outcome: every point that ran gives "
                f"{word}", style="bold green")))
    else:
        parts += _change_renderables(b, first, primary=True)
        for c in b.changes[1:]:
            parts += _change_renderables(b, c, primary=False)
    n = len(b.outcomes)
    parts.append(_indent(Text(f"{b.runs} run{'s' if b.runs != 1 else ''} for {n} points; "
                              f"{n - b.runs} not run (provably the same run as another point)",
                              style="dim")))
    return Group(*parts)


def _change_renderables(b: Bisection, c: Change, *, primary: bool) -> list[RenderableType]:
    from ksmrepro.analysis.bisect import observation_changes

    title, flip = _change_words(b, c)
    culprits = [b.outcomes[i].point.patch for i in range(c.before + 1, c.after + 1)]
    out: list[RenderableType] = []
    if primary:
        line = Text(f"{title}: ", style="bold")
    else:
        line = Text("the outcome changes again: ", style=DIVERGE)
    if c.exact:
        p = culprits[0]
        if p is None:  # pragma: no cover - point 0 is never a change's "after"
            raise ValueError("a change at the start point")
        line.append(p.name, style="bold cyan")
        line.append(f" (point {c.after}; {flip})")
        out.append(_indent(line))
        out.append(patch_renderable(p, indent=4))
    else:
        line.append(" or ".join(p.name for p in culprits if p is not None), style="bold cyan")
        line.append(f" (points {c.before + 1}..{c.after}; {flip}; the points between "
                    f"could not run)")
        out.append(_indent(line))
    before, after = b.outcomes[c.before].result, b.outcomes[c.after].result
    rows = observation_changes(before, after)
    if b.observe is not None:
        rows = [r for r in rows if r[0] == b.observe] or rows
    if rows:
        step, label = rows[0][0], rows[0][1]
        obs = _table(wide=True)
        obs.add_column("counter", no_wrap=True)
        obs.add_column("expected", justify="right", no_wrap=True)
        obs.add_column(f"point {c.before}", justify="right", no_wrap=True)
        obs.add_column(f"point {c.after}", justify="right", no_wrap=True)
        for _, _, name, exp, va, vb in rows:
            st = DIFFERS if va != vb else ""
            obs.add_row(Text(name), Text(exp), Text(va, style=st), Text(vb, style=st))
        out.append(_indent(Text(f"{_step_title(step, b.op(step), label)}, before and after:"),
                           4))
        out.append(_indent(obs, 6))
    elif b.outcomes[c.after].skip is None:
        err = after.error or before.error
        if err is not None:
            out.append(_indent(Text(f"step {err.step}: {err.errno or err.signal or 'failed'}"
                                    f"{' — ' + err.message if err.message else ''}"), 4))
    return out


# --- models --------------------------------------------------------------------------------


def registry_renderable() -> RenderableType:
    """``ksmrepro models``: bases, patches (series order first), named models, series."""
    from ksmrepro.models import registry

    parts: list[RenderableType] = []
    bases = _table(show_header=False, box=None)
    bases.add_column(no_wrap=True, style="bold cyan")
    bases.add_column(overflow="fold")
    for b in registry.BASES.values():
        bases.add_row(Text(b.name), Text(b.title + (f"\n{b.summary}" if b.summary else "")))
    parts += [Text("bases", style="bold underline"), _indent(bases), Text("")]

    order: list[str] = []
    for s in registry.SERIES.values():
        order += [p for p in s.patches if p not in order]
    order += sorted(p for p in registry.PATCHES if p not in order)
    parts.append(Text("patches", style="bold underline"))
    for name in order:
        p = registry.PATCHES[name]
        line = Text(name, style="bold cyan")
        src = registry.source_of("patch", name)
        if src:
            line.append(f"  (from {src})", style="dim")
        parts += [_indent(line), patch_renderable(p, indent=4)]
    parts.append(Text(""))

    named = _table(show_header=False, box=None)
    named.add_column(no_wrap=True, style="bold cyan")
    named.add_column(overflow="fold")
    for m in registry.NAMED.values():
        desc = f"= {m.expr}"
        if m.knobs:
            desc += "  knobs: " + ", ".join(f"{k}={v}" for k, v in m.knobs)
        if m.summary:
            desc += f"\n{m.summary}"
        if m.source:
            desc += f"\n(from {m.source})"
        named.add_row(Text(m.name), Text(desc))
    parts += [Text("named models", style="bold underline"), _indent(named), Text("")]

    parts.append(Text("series", style="bold underline"))
    for s in registry.SERIES.values():
        line = Text(s.name, style="bold cyan")
        line.append(f"  on {s.base}, {len(s.patches)} patches")
        if s.source:
            line.append(f"  (from {s.source})", style="dim")
        parts.append(_indent(line))
        if s.summary:
            parts.append(_indent(Text(s.summary), 4))
        steps = _table(show_header=False, box=None)
        steps.add_column(justify="right", no_wrap=True)
        steps.add_column(no_wrap=True)
        steps.add_column(overflow="fold")
        steps.add_row(Text("0"), Text(s.base), Text("(start)", style="dim"))
        for i, pn in enumerate(s.patches, start=1):
            sp = registry.PATCHES.get(pn)
            steps.add_row(Text(str(i)), Text(pn), Text(sp.title if sp else "?"))
        parts.append(_indent(steps, 4))
    parts.append(Text(""))
    parts.append(Text(f"a model is BASE[+PATCH...] or NAMED[+PATCH...], e.g. "
                      f"{registry.DEFAULT_MODEL}+ksm-pte-mkold; ksmrepro models NAME shows one",
                      style="dim"))
    return Group(*parts)


def model_renderable(model: Model, named: str | None = None) -> RenderableType:
    """One resolved model: its base, patches in order, switches changed from the base, knobs."""
    head = Text(model.name, style="bold cyan")
    if named:
        head.append(f" = {named}")
    rows = _table(show_header=False, box=None)
    rows.add_column(no_wrap=True, style="dim")
    rows.add_column(overflow="fold")
    rows.add_row("base", Text(f"{model.base.name}: {model.base.title}"))
    rows.add_row("patches", Text("\n".join(f"{p.name}: {p.title}" for p in model.patches)
                                 or "none"))
    changed = model.switches.changed_from(model.base.switches)
    rows.add_row("switches", Text("\n".join(f"{k}: {_switch(a)} -> {_switch(b)}"
                                            for k, (a, b) in changed.items())
                                  or "as the base"))
    if model.knobs:
        rows.add_row("knobs", Text(", ".join(f"{k}={v}" for k, v in model.knobs)))
    return Group(head, _indent(rows))


def print_wide(console: Console, renderable: RenderableType) -> None:
    """Print ``renderable`` at the console's width, or as wide as its tables need when that
    is more: an ellipsised model name or counter would hide what the table is for."""
    from rich.measure import Measurement

    options = console.options.update_width(1000)
    need = max((Measurement.get(console, options, t).maximum + indent
                for t, indent in _tables(renderable, 0)), default=0)
    if need <= console.width:
        console.print(renderable)
        return
    width = console.width
    console.width = need
    try:
        console.print(renderable)
    finally:
        console.width = width


def _tables(r: Any, indent: int) -> list[tuple[Table, int]]:
    if isinstance(r, _WideTable):
        return [(r, indent)]
    if isinstance(r, Group):
        return [t for child in r.renderables for t in _tables(child, indent)]
    if isinstance(r, Padding):
        return _tables(r.renderable, indent + r.left)
    return []
