"""Running scenario × model jobs (``collect.plan``), serially or in worker processes.

``-j N`` must not change the results: jobs are run with ``executor.map``, which
returns them in submission order, and each worker returns plain data (a
``RunResult``, or the text of an error), so the reports are byte-identical to a
serial run's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ksmrepro.errors import KernelBug, KsmreproError
from ksmrepro.report import RunRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ksmrepro.collect import Job
    from ksmrepro.runner.results import RunResult

__all__ = ["execute"]


@dataclass(frozen=True)
class _Done:
    # What a worker sends back: picklable whatever the exception classes look like.
    result: RunResult | None
    kernel_bug: str | None = None
    bug_step: int | None = None
    error: str | None = None  # str() of a KsmreproError that is not a KernelBug


def _bug_step(bug: KernelBug) -> int | None:
    step = getattr(bug, "step", None)
    if isinstance(step, int):
        return step
    index = getattr(step, "index", None)
    return index if isinstance(index, int) else None


def _run_job(job: Job) -> _Done:
    # Module attribute, not a from-import: tests replace ksmrepro.runner.run_scenario.
    from ksmrepro import runner

    try:
        return _Done(runner.run_scenario(job.scenario, job.model, trace=job.trace,
                                         ksmd_phase=job.ksmd_phase))
    except KernelBug as bug:
        text = str(bug) or type(bug).__name__
        invariant = getattr(bug, "invariant", None)
        if invariant and str(invariant) not in text:
            text = f"{invariant}: {text}"
        return _Done(None, kernel_bug=text, bug_step=_bug_step(bug))
    except KsmreproError as exc:
        return _Done(None, error=str(exc))


def _record(job: Job, done: _Done) -> RunRecord:
    from ksmrepro.runner.results import RunResult, StepFailure

    if done.result is not None:
        return RunRecord(done.result, job.scenario)
    failure = None
    if done.bug_step is not None:
        step = next((s for s in job.scenario.steps if s.index == done.bug_step), None)
        failure = StepFailure(done.bug_step, message=done.kernel_bug or "",
                              label=step.label if step else None,
                              line=step.line if step else 0)
    result = RunResult(job.scenario.name, job.scenario.path, job.model, "error", error=failure)
    return RunRecord(result, job.scenario, kernel_bug=done.kernel_bug)


def execute(jobs: Sequence[Job], workers: int | None = None) -> list[RunRecord]:
    """Run ``jobs``; ``workers`` > 1 runs them in that many processes (0: one per CPU;
    None: automatic, worker processes when there are several jobs and CPUs, as
    ``analysis.parallel.auto_workers`` decides).

    :raises KsmreproError: the first error (in job order) that is not a KernelBug
    """
    from ksmrepro.analysis.parallel import Workers, auto_workers

    if workers is None:
        workers = auto_workers(len(jobs))
    if workers == 0:
        workers = os.cpu_count() or 1
    if workers <= 1 or len(jobs) <= 1:
        done = []
        for job in jobs:
            done.append(_run_job(job))
            if done[-1].error is not None:
                break
    else:
        # forked workers (where available) with the parent's model files installed
        with Workers(min(workers, len(jobs))) as pool:
            done = pool.map(_run_job, jobs)
    for d in done:
        if d.error is not None:
            raise KsmreproError(d.error)
    return [_record(job, d) for job, d in zip(jobs, done, strict=True)]
