"""Is an outcome a race with ksmd?  ``ksmrepro phases``: one scenario, one model, ksmd's
passes shifted through one cycle against the steps.

On a real machine nothing fixes where ksmd's passes fall between a test's steps: ksmd
sleeps ``sleep_millisecs`` after each batch, and how long the steps before take decides
which step a pass lands after.  A plain run gives one alignment (ksmd runs at once when
woken).  A sweep runs the scenario ``n`` times, with ksmd's passes ``i/n`` of a cycle
later each time (:attr:`ksmrepro.mm.kernel.Kernel.ksmd_phase`), and lines the runs up as
``compare`` lines up models: an observation that differs between phases depends on the
race, and the sweep says in which phases each value came out.  Phase 0 is the plain run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ksmrepro.analysis.compare import Row, compare_results

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ksmrepro.runner.results import RunResult
    from ksmrepro.scenario.steps import Scenario

__all__ = ["DEFAULT_PHASES", "MAX_PHASES", "PhaseSweep", "phase_ranges", "sweep", "sweeps"]

DEFAULT_PHASES = 16
MAX_PHASES = 1000


@dataclass(frozen=True)
class PhaseSweep:
    """One model's runs at phases 0/n .. (n-1)/n, lined up row by row.

    :param results: per phase, in phase order (``model`` is the model's name)
    :param rows: ``compare``'s rows, with a value per phase
    """

    scenario: str
    file: str
    model: str
    n: int
    results: tuple[RunResult, ...]
    rows: tuple[Row, ...]

    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(r.status for r in self.results)

    @property
    def rows_differing(self) -> int:
        """How many rows (a counter of a step, or a step's result) differ between phases."""
        return sum(row.differs for row in self.rows)

    @property
    def timing_dependent(self) -> bool:
        """Some observation, step result or status differs between phases."""
        return self.rows_differing > 0 or len(set(self.statuses)) > 1

    @property
    def outcome_dependent(self) -> bool:
        """The verdict differs between phases: the run's status, or whether an expectation
        held (a printed value that differs, such as full_scans, is not a verdict)."""
        return len(set(self.statuses)) > 1 or any(len(set(r.failed)) > 1 for r in self.rows)

    def distribution(self, row: Row) -> list[tuple[str, list[int]]]:
        """Each value of ``row`` with the phases (indices) that gave it, in order of the
        first phase giving it."""
        return _by_value(row.values)

    def status_distribution(self) -> list[tuple[str, list[int]]]:
        """Each status with the phases that gave it (as :meth:`distribution`)."""
        return _by_value(self.statuses)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "file": self.file,
            "model": self.model,
            "phases": self.n,
            "timing_dependent": self.timing_dependent,
            "outcome_dependent": self.outcome_dependent,
            "statuses": [{"status": s, "phases": [f"{i}/{self.n}" for i in ix]}
                         for s, ix in self.status_distribution()],
            "rows": [{"step": r.step, "label": r.label, "op": r.op, "counter": r.counter,
                      "expected": r.expected,
                      "values": [{"value": v, "phases": [f"{i}/{self.n}" for i in ix]}
                                 for v, ix in self.distribution(r)]}
                     for r in self.rows],
        }


def _by_value(values: Sequence[str]) -> list[tuple[str, list[int]]]:
    seen: dict[str, list[int]] = {}
    for i, v in enumerate(values):
        seen.setdefault(v, []).append(i)
    return list(seen.items())


def phase_ranges(indices: Sequence[int], n: int) -> str:
    """``[3, 4, 5, 7]`` of 16 -> ``3/16-5/16, 7/16``."""
    parts: list[str] = []
    i = 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        a, b = indices[i], indices[j]
        parts.append(f"{a}/{n}" if a == b else f"{a}/{n}-{b}/{n}")
        i = j + 1
    return ", ".join(parts)


def _run_one(args: tuple[Scenario, str, Fraction]) -> RunResult:
    from ksmrepro import runner

    scenario, model, phase = args
    return runner.run_scenario(scenario, model, ksmd_phase=phase)


def sweeps(scenario: Scenario, models: Sequence[str], n: int = DEFAULT_PHASES, *,
           workers: int | None = None) -> list[PhaseSweep]:
    """Sweep ``scenario`` on every model (runs in worker processes as ``compare`` does).

    :raises ValueError: ``n`` is not in 1..MAX_PHASES
    :raises KsmreproError: an unknown model, or a simulated VM_BUG_ON (KernelBug)
    """
    from ksmrepro.analysis.parallel import map_runs
    from ksmrepro.models import resolve

    if not 1 <= n <= MAX_PHASES:
        raise ValueError(f"the number of phases must be 1..{MAX_PHASES}, not {n}")
    for m in models:
        resolve(m)
    items = [(scenario, m, Fraction(i, n)) for m in models for i in range(n)]
    results = map_runs(_run_one, items, workers)
    out: list[PhaseSweep] = []
    for k in range(len(models)):
        runs = results[k * n:(k + 1) * n]
        cmp = compare_results([replace(r, model=f"{i}/{n}") for i, r in enumerate(runs)],
                              scenario)
        out.append(PhaseSweep(scenario.name, scenario.path, runs[0].model, n, tuple(runs),
                              cmp.rows))
    return out


def sweep(scenario: Scenario, model: str, n: int = DEFAULT_PHASES, *,
          workers: int | None = None) -> PhaseSweep:
    """Sweep ``scenario`` on one model."""
    return sweeps(scenario, [model], n, workers=workers)[0]
