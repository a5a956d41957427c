"""One scenario on several models, side by side: ``ksmrepro compare``.

Observations are matched by step: a row per counter an observing step read (``expect`` or
``print``), with the expected value and each model's value; a step that failed (an errno, a
signal) on some model gets a ``result`` row.  The first step whose rows are not the same on
every model is the *first divergence*.  With traces, :func:`~ksmrepro.analysis.tracediff.first_divergence`
says where the kernels' decisions part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ksmrepro.analysis.outcome import raw_ok
from ksmrepro.analysis.tracediff import TraceDivergence, first_divergence

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ksmrepro.runner.results import RunResult
    from ksmrepro.scenario.steps import Scenario

__all__ = ["Comparison", "Row", "compare", "compare_results", "run_models"]

NOT_REACHED = "-"


@dataclass(frozen=True)
class Row:
    """One counter of one observing step (or a step's result), on every model.

    :param counter: the counter's name, or ``result`` for a step that failed somewhere
    :param expected: the expectation as written, ``""`` for a ``print`` or a ``result``
    :param values: per model, in the comparison's model order (``-``: the run stopped before)
    :param failed: per model, whether this value broke the step's expectation
    """

    step: int
    label: str | None
    op: str
    counter: str
    expected: str
    values: tuple[str, ...]
    failed: tuple[bool, ...]
    line: int = 0

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


@dataclass(frozen=True)
class Comparison:
    """The table ``compare`` prints, and the runs it came from.

    :param first_divergent_step: the first step whose rows differ between models (None: none)
    :param trace: where the traces part (None: identical, or not traced)
    """

    scenario: str
    file: str
    models: tuple[str, ...]
    results: tuple[RunResult, ...]
    rows: tuple[Row, ...]
    first_divergent_step: int | None
    traced: bool = False
    trace: TraceDivergence | None = None

    @property
    def raw_ok(self) -> tuple[bool, ...]:
        """Per model: did every expectation hold (``known_failures`` not consulted)."""
        return tuple(raw_ok(r) for r in self.results)

    @property
    def same(self) -> bool:
        """No observation, step result or outcome differs (traces aside)."""
        return self.first_divergent_step is None and len(set(self.raw_ok)) <= 1


def _step_info(scenario: Scenario | None, index: int) -> tuple[str | None, str | None, int]:
    if scenario is not None:
        for s in scenario.steps:
            if s.index == index:
                return s.KEY, s.label, s.line
    return None, None, 0


def _result_text(result: RunResult, step: int) -> str:
    err = result.error
    for o in result.step_outcomes:
        if o.step == step:
            return f"{o.errno or o.signal} (asked for)"
    if err is not None and err.step == step:
        return err.errno or err.signal or "failed"
    if err is not None and err.step < step:
        return NOT_REACHED
    return "ok"


def compare_results(results: Sequence[RunResult], scenario: Scenario | None = None,
                    *, traced: bool = False) -> Comparison:
    """Line up ``results`` (one scenario, one result per model) observation by observation."""
    if not results:
        raise ValueError("nothing to compare")
    models = tuple(r.model for r in results)
    steps = sorted({o.step for r in results for o in r.observations}
                   | {r.error.step for r in results if r.error is not None}
                   | {o.step for r in results for o in r.step_outcomes})
    rows: list[Row] = []
    for step in steps:
        obs = [next((o for o in r.observations if o.step == step), None) for r in results]
        op, label, line = _step_info(scenario, step)
        seen = [o for o in obs if o is not None]
        if seen:
            first = seen[0]
            expected = first.expected or {}
            names: list[str] = list(expected)
            for o in seen:
                names += [k for k in o.values if k not in names]
            for name in names:
                rows.append(Row(
                    step, label if label is not None else first.label, op or first.op, name,
                    "" if first.expected is None else str(expected.get(name, "")),
                    tuple(NOT_REACHED if o is None or name not in o.values else
                          str(o.values[name]) for o in obs),
                    tuple(o is not None and name in o.failed_keys for o in obs),
                    line or first.line))
        failed_here = [r.error is not None and r.error.step == step for r in results]
        asked = [any(o.step == step for o in r.step_outcomes) for r in results]
        if any(failed_here) or any(asked):
            rows.append(Row(step, label, op or "", "result", "",
                            tuple(_result_text(r, step) for r in results),
                            tuple(failed_here), line))
    diverging = next((row.step for row in rows if row.differs), None)
    trace = first_divergence(models, [r.trace for r in results]) if traced else None
    return Comparison(results[0].scenario, results[0].file, models, tuple(results), tuple(rows),
                      diverging, traced, trace)


def _run_one(args: tuple[Scenario, str, bool]) -> RunResult:
    from ksmrepro import runner

    scenario, model, trace = args
    return runner.run_scenario(scenario, model, trace=trace)


def run_models(scenario: Scenario, models: Sequence[str], *, trace: bool = False,
               workers: int | None = None) -> list[RunResult]:
    """Run ``scenario`` (parsed once) on every model, in worker processes when there are
    several models and CPUs (``workers`` None: automatic); results in ``models`` order.

    :raises KsmreproError: an unknown model, or a simulated VM_BUG_ON (KernelBug)
    """
    from ksmrepro.analysis.parallel import map_runs
    from ksmrepro.models import resolve

    for m in models:
        resolve(m)  # unknown names fail here, before anything runs
    return map_runs(_run_one, [(scenario, m, trace) for m in models], workers)


def compare(scenario: Scenario, models: Sequence[str], *, trace: bool = False,
            workers: int | None = None) -> Comparison:
    """Run ``scenario`` on ``models`` and line the results up."""
    results = run_models(scenario, models, trace=trace, workers=workers)
    return compare_results(results, scenario, traced=trace)
