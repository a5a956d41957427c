"""``ksmrepro bisect``: the first patch of a series whose application changes the outcome.

A *walk* is a list of points: the start (a base, or the ``--good`` model), then one more
patch applied at each point, up to the end of the series (or the ``--bad`` model).  Patches
given with ``--with`` are applied on top at every point (Hugh's testcase needs
``ksm-pte-mkold``, without which no stock kernel ever swaps the KSM folio).

The *outcome* of a point is, by default, the **raw** result of the scenario's expectations:
did every ``expect`` hold (and no step fail unexpectedly)?  ``known_failures`` are not
consulted: they describe a model, and bisect asks what *changes* between models.  With
``observe=STEP`` the outcome is the values that step read instead.  A point whose run
stops at a step its kernel lacks (``outcome.cannot_run``) is *skipped*, as ``git bisect``
skips a commit that does not build.

The search is a binary search between the two ends (several probes per round when there
are several workers), then **every** point is checked — runs are cheap — so a series whose
outcome flips and flips back (a fix later in the series) is reported as such, never hidden by
the binary search's assumption that it flips once.

Runs that would provably repeat another run are not run: the kernel reads ``switches`` and
nothing else of a model, and a run is deterministic, so a point whose switches differ from an
already-run point's only in switches that run never read has the same run (the first
difference between two runs can only come from reading a switch on which they differ).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from ksmrepro.analysis.outcome import cannot_run, observation_at, raw_ok
from ksmrepro.errors import ModelError
from ksmrepro.models.base import Model, Patch, Switches

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Sequence

    from ksmrepro.runner.results import RunResult
    from ksmrepro.scenario.steps import Scenario

__all__ = [
    "Bisection",
    "Change",
    "Point",
    "PointOutcome",
    "Walk",
    "bisect",
    "observation_changes",
    "range_walk",
    "series_walk",
]

PASS, FAIL = "pass", "fail"


# --- the walk ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One point of a walk: its model, and the patch that leads to it from the previous one."""

    index: int
    model: Model
    patch: Patch | None


@dataclass(frozen=True)
class Walk:
    """What ``bisect`` walks: points 0..n, each one more patch than the previous.

    :param title: ``series ksm-rmap-walk`` or ``v7.0-rc6 .. mm-2026-04``
    :param start: the model at point 0, as the user would name it
    :param with_patches: applied on top at every point
    """

    title: str
    start: str
    points: tuple[Point, ...]
    with_patches: tuple[Patch, ...] = ()
    summary: str = ""


def _with(names: Iterable[str]) -> list[Patch]:
    from ksmrepro.models.registry import expand_patches

    return expand_patches(names)


def _build(title: str, start: str, base: str, fixed: Sequence[str], steps: Sequence[Patch],
           with_names: Sequence[str], knobs: tuple[tuple[str, Any], ...],
           summary: str = "") -> Walk:
    # fixed: patch names applied at every point, before the series' (the --good model's,
    # or a named model the series starts from); steps: the series; with: on top of all.
    from ksmrepro.models.registry import compose

    with_patches = _with(with_names)
    walked = {p.name for p in steps} | set(fixed)
    for p in with_patches:
        if p.name in walked:
            raise ModelError(f"--with {p.name}: already applied by {title}")
    names = [p.name for p in with_patches]
    if len(set(names)) != len(names):
        raise ModelError(f"--with: a patch is given twice ({', '.join(names)})")
    points = []
    for i in range(len(steps) + 1):
        patch_names = [*fixed, *(p.name for p in steps[:i]), *names]
        try:
            model = compose(base, patch_names, knobs,
                            name=_point_name(start, [p.name for p in steps[:i]], names))
        except ModelError as exc:
            raise ModelError(f"{title}, point {i}: {exc}") from None
        points.append(Point(i, model, steps[i - 1] if i else None))
    return Walk(title, start, tuple(points), tuple(with_patches), summary)


def _point_name(start: str, patches: Sequence[str], with_names: Sequence[str]) -> str:
    return "+".join((start, *patches, *with_names))


def series_walk(name: str, with_patches: Sequence[str] = ()) -> Walk:
    """The walk of series ``name``: its base, then each of its patches.

    :raises ModelError: an unknown series or patch, or a point that does not resolve
    """
    from ksmrepro.models.registry import expand_patches, get_series, split_model

    series = get_series(name)
    base, fixed, knobs = split_model(series.base)
    steps = expand_patches(series.patches)
    return _build(f"series {name}", series.base, base, fixed, steps, with_patches,
                  tuple(knobs.items()), series.summary)


def range_walk(good: str, bad: str, with_patches: Sequence[str] = ()) -> Walk:
    """The walk from model ``good`` to model ``bad``: they must share a base (and knobs), and
    ``bad`` must have every patch ``good`` has; the patches only ``bad`` has are walked, in
    ``bad``'s order.

    :raises ModelError: unknown names, or models that are not on one series
    """
    from ksmrepro.models.registry import expand_patches, split_model

    gbase, gnames, gknobs = split_model(good)
    bbase, bnames, bknobs = split_model(bad)
    if gbase != bbase:
        raise ModelError(f"--good {good} and --bad {bad} are not on one series: their bases "
                         f"are {gbase} and {bbase}")
    if gknobs != bknobs:
        raise ModelError(f"--good {good} and --bad {bad} set different knobs "
                         f"({gknobs or 'none'} and {bknobs or 'none'}); bisect walks patches")
    gp = [p.name for p in expand_patches(gnames)]
    bp = expand_patches(bnames)
    missing = [n for n in gp if n not in {p.name for p in bp}]
    if missing:
        raise ModelError(f"--good {good} and --bad {bad} are not on one series: {bad} lacks "
                         f"{', '.join(missing)}")
    steps = [p for p in bp if p.name not in gp]
    if not steps:
        raise ModelError(f"--bad {bad} has no patch that --good {good} does not have")
    # good's patches keep their place in bad's order: apply them first (they are in every
    # point) unless one needs a walked patch, which is then an error from compose().
    return _build(f"{good} .. {bad}", good, gbase, gp, steps, with_patches,
                  tuple(gknobs.items()))


# --- running points ------------------------------------------------------------------------

_SWITCH_NAMES = frozenset(f.name for f in fields(Switches))
_READS: set[str] = set()


class _RecordingSwitches(Switches):
    """Switches that remember which of them the kernel read (see the module docstring)."""

    def __getattribute__(self, name: str) -> Any:
        if name in _SWITCH_NAMES:
            _READS.add(name)
        return object.__getattribute__(self, name)


@dataclass(frozen=True)
class _Run:
    result: RunResult
    reads: frozenset[str]


def _run_point(args: tuple[Scenario, Model]) -> _Run:
    from ksmrepro import runner

    scenario, model = args
    recording = _RecordingSwitches(**{n: getattr(model.switches, n) for n in _SWITCH_NAMES})
    _READS.clear()
    result = runner.run_scenario(scenario, replace(model, switches=recording))
    reads = frozenset(_READS)
    _READS.clear()
    return _Run(result, reads)


# --- outcomes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointOutcome:
    """What one point says.

    :param value: ``"pass"``/``"fail"`` (every expectation held or not), or with ``observe``
        the ``(counter, value)`` pairs that step read (None: not reached); None when skipped
    :param skip: why the scenario cannot run on this point's model (None: it ran)
    :param result: the run (that of ``same_as`` when this point was not run)
    :param same_as: the point whose run this one provably repeats, if it was not run
    :param unread: the switches this point changes that ``same_as``'s run never read
    """

    point: Point
    value: Hashable | None
    skip: str | None
    result: RunResult
    same_as: int | None = None
    unread: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """The outcome differs between tested points ``before`` and ``after``; when points in
    between were skipped, the change is due to one of the patches ``before+1 .. after``."""

    before: int
    after: int

    @property
    def exact(self) -> bool:
        return self.after == self.before + 1


@dataclass(frozen=True)
class Bisection:
    """The answer: every point's outcome, and where it changes.

    :param binary_first: the point the binary search alone named (None: the ends agree)
    :param probes: the points the binary search looked at, in order
    :param runs: simulations actually run (the others were provably identical)
    """

    scenario: str
    file: str
    walk: Walk
    observe: int | None
    outcomes: tuple[PointOutcome, ...]
    changes: tuple[Change, ...]
    binary_first: int | None
    probes: tuple[int, ...] = ()
    runs: int = 0
    observe_label: str | None = None
    step_ops: tuple[tuple[int, str], ...] = ()  # (step index, step key), for titles

    def op(self, step: int) -> str | None:
        return dict(self.step_ops).get(step)

    @property
    def first(self) -> Change | None:
        return self.changes[0] if self.changes else None


def _value(result: RunResult, observe: int | None) -> Hashable | None:
    if observe is None:
        return PASS if raw_ok(result) else FAIL
    obs = observation_at(result, observe)
    return None if obs is None else tuple(obs.values.items())


class _Evaluator:
    def __init__(self, scenario: Scenario, walk: Walk, observe: int | None,
                 pool: Any) -> None:
        self.scenario = scenario
        self.walk = walk
        self.observe = observe
        self.pool = pool
        self.done: dict[int, PointOutcome] = {}
        self.reads: dict[int, frozenset[str]] = {}
        self.runs = 0
        if observe is not None:
            # nothing after the observed step can change what it reads
            steps = tuple(s for s in scenario.steps if s.index <= observe)
            self.scenario = replace(scenario, steps=steps)

    def _same_as(self, i: int) -> tuple[int, tuple[str, ...]] | None:
        mi = self.walk.points[i].model
        for j, reads in self.reads.items():
            mj = self.walk.points[j].model
            if mi.knobs != mj.knobs:
                continue
            diff = tuple(mi.switches.changed_from(mj.switches))
            if not set(diff) & reads:
                return j, diff
        return None

    def _outcome(self, i: int, result: RunResult, same_as: int | None = None,
                 unread: tuple[str, ...] = ()) -> PointOutcome:
        skip = cannot_run(result, self.scenario)
        value = None if skip else _value(result, self.observe)
        return PointOutcome(self.walk.points[i], value, skip, result, same_as, unread)

    def ensure(self, indices: Iterable[int], fill: int = 0) -> None:
        """Evaluate ``indices``; with ``fill``, run other points too until ``fill`` runs are
        in this round (workers that would otherwise idle: every point is checked anyway)."""
        todo: list[int] = []
        for i in sorted(set(indices)):
            if i in self.done:
                continue
            same = self._same_as(i)
            if same is not None:
                j, unread = same
                self.done[i] = self._outcome(i, self.done[j].result, j, unread)
            else:
                todo.append(i)
        # points with equal switches (and knobs) in one round: run one of them
        firsts: dict[tuple[Any, ...], int] = {}
        run: list[int] = []
        for i in todo:
            m = self.walk.points[i].model
            key = (m.switches, m.knobs)
            if key not in firsts:
                firsts[key] = i
                run.append(i)
        n = len(self.walk.points)
        for i in sorted(range(n), key=lambda i: (abs(2 * i - (n - 1)), i)):  # middle first
            if len(run) >= fill:
                break
            m = self.walk.points[i].model
            if i in self.done or i in todo or (m.switches, m.knobs) in firsts \
                    or self._same_as(i) is not None:
                continue
            firsts[(m.switches, m.knobs)] = i
            run.append(i)
            todo.append(i)
        runs = self.pool.map(_run_point, [(self.scenario, self.walk.points[i].model)
                                          for i in run])
        self.runs += len(run)
        for i, r in zip(run, runs, strict=True):
            self.reads[i] = r.reads
            self.done[i] = self._outcome(i, r.result)
        for i in todo:
            if i not in self.done:
                m = self.walk.points[i].model
                j = firsts[(m.switches, m.knobs)]
                self.done[i] = self._outcome(i, self.done[j].result, j)

    def value(self, i: int) -> Hashable | None:
        return self.done[i].value

    def skipped(self, i: int) -> bool:
        return self.done[i].skip is not None


def _probes(inner: Sequence[int], k: int) -> list[int]:
    # up to k of the untested points between the bounds, evenly spread
    return sorted({inner[(len(inner) * j) // (k + 1)] for j in range(1, k + 1)})


def bisect(scenario: Scenario, walk: Walk, *, observe: int | None = None,
           workers: int | None = None) -> Bisection:
    """Find the first point of ``walk`` whose outcome differs from the previous point's.

    :param observe: the index of a ``print``/``expect`` step whose values are the outcome
        (default: whether every expectation held)
    :param workers: worker processes (None: automatic)
    :raises KsmreproError: a point cannot run at the start of the walk, or a KernelBug
    """
    from ksmrepro.analysis.parallel import Workers, auto_workers

    n = len(walk.points) - 1
    nworkers = auto_workers(len(walk.points), share=False) if workers is None \
        else max(1, workers)
    probes: list[int] = []
    with Workers(nworkers) as pool:
        ev = _Evaluator(scenario, walk, observe, pool)
        ev.ensure([0, n], fill=nworkers)
        binary_first = None
        if not ev.skipped(0) and not ev.skipped(n) and ev.value(0) != ev.value(n):
            lo, hi = 0, n
            while True:
                inner = [p for p in range(lo + 1, hi) if p not in ev.done]
                if not inner:
                    break
                round_ = _probes(inner, nworkers)
                probes += round_
                ev.ensure(round_, fill=nworkers)
                for p in range(lo + 1, hi):
                    if p in ev.done and not ev.skipped(p):
                        if ev.value(p) == ev.value(0):
                            lo = p
                        else:
                            hi = p
                            break
            binary_first = hi
        # check every point: the outcome may flip more than once
        ev.ensure(range(n + 1))
    outcomes = tuple(ev.done[i] for i in range(n + 1))
    changes: list[Change] = []
    prev: int | None = None
    for o in outcomes:
        if o.skip is not None:
            continue
        i = o.point.index
        if prev is not None and o.value != outcomes[prev].value:
            changes.append(Change(prev, i))
        prev = i
    label = None
    if observe is not None:
        label = next((s.label for s in scenario.steps if s.index == observe), None)
    return Bisection(scenario.name, scenario.path, walk, observe, outcomes, tuple(changes),
                     binary_first, tuple(probes), ev.runs, label,
                     tuple((s.index, s.KEY) for s in scenario.steps))


def observation_changes(before: RunResult, after: RunResult
                        ) -> list[tuple[int, str | None, str, str, str, str]]:
    """The observations that differ between two runs, step by step:
    ``(step, label, counter, expected, before, after)`` for each counter that differs, in the
    first step where any differs (the step "before and after" a change is shown at)."""
    steps = sorted({o.step for o in before.observations} | {o.step for o in after.observations})
    for step in steps:
        a, b = observation_at(before, step), observation_at(after, step)
        names: list[str] = []
        for o in (a, b):
            if o is not None:
                names += [n for n in (o.expected or {}) if n not in names]
                names += [n for n in o.values if n not in names]
        rows = []
        for name in names:
            va = "-" if a is None or name not in a.values else str(a.values[name])
            vb = "-" if b is None or name not in b.values else str(b.values[name])
            exp = (a or b).expected or {}  # type: ignore[union-attr]
            rows.append((step, (a or b).label, name,  # type: ignore[union-attr]
                         str(exp.get(name, "")), va, vb))
        if any(r[4] != r[5] for r in rows):
            return rows
    return []

