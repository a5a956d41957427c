"""Worker processes for runs: results identical to serial runs, in submission order.

A run is deterministic and returns plain data, so running models in parallel cannot change
a report: :meth:`Workers.map` returns results in the order of its items, whatever order the
workers finish in.  Workers are forked (where the platform can): they start in a few
milliseconds with every module already imported and every model file already installed.
Where ``fork`` is not available (or ``KSMREPRO_JOBS=1``), :func:`auto_workers` says 1 and
everything runs in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import TypeVar

__all__ = ["JOBS_ENV", "Workers", "auto_workers", "map_runs", "usable_cpus"]

T = TypeVar("T")
R = TypeVar("R")

JOBS_ENV = "KSMREPRO_JOBS"  # a number of workers for "auto" (1: never fork)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _fork_context() -> BaseContext | None:
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork")


def auto_workers(n_items: int, *, share: bool = True) -> int:
    """Workers for ``n_items`` runs when the command line does not say.

    1 (no worker processes) for a single run, a single CPU, or a platform without ``fork``
    (spawned workers would re-import everything, which costs more than a short run).
    Otherwise one worker per run when there are at most twice as many runs as CPUs, else
    one per CPU.  Runs of one scenario take about as long as each other, so three runs on two
    CPUs finish in 1.5 run-times when all three share the CPUs, but in 2 when two run first
    and the third after them; a run needs ~50 MB.  ``KSMREPRO_JOBS=N`` overrides the CPU
    count (``KSMREPRO_JOBS=1``: never fork).

    :param share: allow more workers than CPUs as above (False: at most one per CPU, for
        callers that run in rounds and learn from each, like bisect)"""
    env = os.environ.get(JOBS_ENV, "").strip()
    cpus = int(env) if env.isdigit() and int(env) > 0 else usable_cpus()
    if n_items <= 1 or cpus <= 1 or _fork_context() is None:
        return 1
    return n_items if share and n_items <= 2 * cpus else min(n_items, cpus)


def _init_worker(state: tuple[object, ...]) -> None:
    # A worker has the parent's model files (fork copies them); spawned ones install them.
    from ksmrepro.models import registry

    registry.install_user_state(state)  # type: ignore[arg-type]


class Workers:
    """``workers`` processes (1: none, everything runs here), started on first use.

    Use as a context manager; :meth:`map` may be called several times (bisect asks in
    rounds) and reuses the same processes.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(item) for item in items]``, in worker processes when there are several."""
        items = list(items)
        if self.workers <= 1 or len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._executor().map(fn, items))

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Import the simulator before forking: every worker then has it for free,
            # instead of each importing it on its first run (~0.2 s each).
            import ksmrepro.runner  # noqa: F401
            from ksmrepro.models import registry

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=_fork_context(),
                initializer=_init_worker, initargs=(registry.user_state(),))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def map_runs(fn: Callable[[T], R], items: Sequence[T], workers: int | None = None) -> list[R]:
    """:meth:`Workers.map` once; ``workers`` None: :func:`auto_workers`."""
    n = auto_workers(len(items)) if workers is None else workers
    with Workers(n) as pool:
        return pool.map(fn, items)
