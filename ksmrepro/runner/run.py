"""Interpret a scenario step by step against a fresh simulated kernel.

Each step is a *user action* (a system call, a memory access, a sysfs write, time
passing); the kernel decides everything else.  After every step the clock advances by
the step's cost (ksmd and kswapd run when due) and the kernel's invariants are checked.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ksmrepro.errors import KernelBug
from ksmrepro.mm.const import MREMAP, PAGE_SIZE, Errno, SigSegv
from ksmrepro.mm.kernel import COST_PROFILES, Kernel, OutOfMemory
from ksmrepro.mm.madvise import sys_madvise, sys_mprotect
from ksmrepro.mm.mmap import calc_vm_prot_bits, do_mmap, do_munmap
from ksmrepro.mm.mremap import sys_mremap
from ksmrepro.models import DEFAULT_MODEL, Model, resolve
from ksmrepro.runner.results import Observation, RunResult, StepFailure, TraceEvent
from ksmrepro.scenario import steps as S

# pages a pressure process touches between two looks at the clock (ksmd, kswapd interleave)
PRESSURE_CHUNK = 8192
KSM_WAIT_TIMEOUT_NS = 120 * 1_000_000_000  # ksm_tests' default -l timeout


def models_for(scenario: S.Scenario, cli_models: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The model expressions to run: the command line's, else the scenario's, else the default."""
    return list(cli_models) or list(scenario.models) or [DEFAULT_MODEL]


def _same_model(a: Model, b: Model) -> bool:
    return a.base.name == b.base.name and sorted(p.name for p in a.patches) == sorted(
        p.name for p in b.patches
    )


def known_failure_for(scenario: S.Scenario, model: Model) -> str | None:
    """The ``known_failures`` reason that applies to ``model``, if any."""
    for expr, reason in scenario.known_failures:
        if _same_model(resolve(expr), model):
            return reason
    return None


class _StepError(Exception):
    def __init__(self, failure: StepFailure) -> None:
        self.failure = failure


class ScenarioRun:
    """One scenario on one kernel."""

    def __init__(self, scenario: S.Scenario, model: Model, *, trace: bool = False,
                 ksmd_phase: Fraction = Fraction(0)) -> None:
        m = scenario.machine
        self.scenario = scenario
        self.model = model
        self.k = Kernel(model.switches, memory_bytes=m.memory, swap_bytes=m.swap, cpus=m.cpus,
                        thp=m.thp, tracing=trace, costs=COST_PROFILES[m.costs],
                        ksmd_phase=ksmd_phase)
        for name, value in list(model.knobs) + list(scenario.ksm):
            self.k.ksm.knobs[name] = value if name == "advisor_mode" else int(value)
        self.observations: list[Observation] = []
        self.outcomes: list[StepFailure] = []
        self.dumps: list[dict[str, Any]] = []
        self.pressure_count = 0

    # --- values ----------------------------------------------------------------------------
    def addr(self, task: Any, a: S.AddrExpr | None) -> int:
        if a is None:
            return 0
        if a.name is None:
            return a.offset
        try:
            return task.names[a.name] + a.offset
        except KeyError:
            raise Errno("EFAULT", f"{a.name!r} is not bound in process {task.name!r}") from None

    # --- steps -----------------------------------------------------------------------------
    def run(self) -> RunResult:
        k = self.k
        error: StepFailure | None = None
        for step in self.scenario.steps:
            k.step = step.index
            try:
                self.do_step(step)
            except _StepError as e:
                error = e.failure
                break
            except KernelBug as e:
                e.step = step.index  # type: ignore[attr-defined]
                e.invariant = str(e)  # type: ignore[attr-defined]
                raise
        return self._result(error)

    def do_step(self, step: S.Step) -> None:
        k = self.k
        failure: StepFailure | None = None
        try:
            task = k.task(step.proc)
            task.mm.lru_gen_ran = True  # the task runs (lru_gen_use_mm() at context switch)
            self._dispatch(step, task)
            k.flush()
        except Errno as e:
            failure = StepFailure(step.index, errno=e.name, message=e.message, label=step.label,
                                  line=step.line, unsupported=e.unsupported)
        except SigSegv as e:
            failure = StepFailure(step.index, signal="SIGSEGV", message=e.message,
                                  label=step.label, line=step.line)
        except OutOfMemory as e:
            failure = StepFailure(step.index, signal="SIGKILL", message=str(e), label=step.label,
                                  line=step.line)
        k.flush()
        k.check_invariants()
        want = step.errno or step.signal
        if failure is None:
            if want:
                raise _StepError(StepFailure(step.index, message=f"expected {want}, but the step "
                                             "succeeded", label=step.label, line=step.line))
            return
        got = failure.errno or failure.signal
        if not want and isinstance(step, S.MemoryReclaim) and got == "EAGAIN":
            # the contract: memory.reclaim's EAGAIN is recorded, not a failure
            self.outcomes.append(StepFailure(failure.step, failure.errno, None, failure.message,
                                             step.label, step.line, False))
            return
        if want and got == want:
            self.outcomes.append(StepFailure(failure.step, failure.errno, failure.signal,
                                             failure.message, step.label, step.line, True))
            return
        raise _StepError(failure)

    def _dispatch(self, step: S.Step, task: Any) -> None:  # noqa: C901 - a plain switch
        k = self.k
        if isinstance(step, S.Mmap):
            addr = do_mmap(k, task, self.addr(task, step.addr), step.length,
                           Kernel.prot_bits(step.prot), Kernel.map_bits(step.flags))
            task.names[step.as_] = addr
        elif isinstance(step, S.Munmap):
            do_munmap(k, task.mm, self.addr(task, step.addr), step.length)
        elif isinstance(step, S.Madvise):
            sys_madvise(k, task, self.addr(task, step.addr), step.length, step.advice)
        elif isinstance(step, S.Mremap):
            flags = 0
            for f in step.flags:
                flags |= MREMAP[f]
            new = sys_mremap(k, task, self.addr(task, step.old_addr), step.old_size,
                             step.new_size, flags, self.addr(task, step.new_addr))
            if step.as_:
                task.names[step.as_] = new
        elif isinstance(step, S.Mprotect):
            sys_mprotect(k, task, self.addr(task, step.addr), step.length,
                         calc_vm_prot_bits(Kernel.prot_bits(step.prot)))
        elif isinstance(step, S.Memset):
            k.user_write(task, self.addr(task, step.addr), step.length, k.memset_op(step.value))
        elif isinstance(step, S.Touch):
            for _ in range(step.times):
                k.user_write(task, self.addr(task, step.addr), step.length,
                             k.touch_op(step.value))
                k.flush()
        elif isinstance(step, S.Read):
            k.user_read(task, self.addr(task, step.addr), step.length)
        elif isinstance(step, S.Fork):
            k.sys_fork(task, step.child)
        elif isinstance(step, S.Spawn):
            k.spawn_task(step.name, cpu=1, memcg=task.memcg)
        elif isinstance(step, S.Exit):
            k.sys_exit(task)
        elif isinstance(step, S.Prctl):
            k.prctl(task, step.option, step.value)
        elif isinstance(step, S.Sysfs):
            k.sysfs_write(step.path, step.value)
        elif isinstance(step, S.Sleep):
            k.flush()
            k.run_until(k.now + step.ns)
        elif isinstance(step, S.KsmWait):
            self.ksm_wait(step.full_scans)
        elif isinstance(step, S.Pressure):
            self.pressure(task, step)
        elif isinstance(step, (S.Print, S.Expect)):
            self.observe(step, task)
        elif isinstance(step, S.Dump):
            k.flush()
            d = k.dump(task, step.what)
            d["step"] = step.index
            d["time_ns"] = k.now
            self.dumps.append(d)
        elif isinstance(step, S.Cgroup):
            k.memcg.create(step.name, step.memory_max)
        elif isinstance(step, S.CgroupAttach):
            cg = k.memcg.get(step.cgroup)
            task.memcg = cg  # echo PID > cgroup.procs: later charges go there
            task.mm.memcg = cg
        elif isinstance(step, S.MemoryReclaim):
            k.flush()
            k.memcg.memory_reclaim(step.cgroup, step.amount, task.cpu)
        else:  # pragma: no cover - the loader only produces the types above
            raise Errno("EINVAL", f"unknown step {type(step).__name__}")

    def ksm_wait(self, n: int) -> None:
        """The selftests' ksm_start(): wait until full_scans has advanced by ``n``."""
        k = self.k
        k.flush()
        target = k.ksm.seqnr + n
        deadline = k.now + KSM_WAIT_TIMEOUT_NS
        while k.ksm.seqnr < target:
            if not k.has_timers() or k._timers[0][0] > deadline:
                raise Errno("EAGAIN", f"full_scans stayed at {k.ksm.seqnr} (ksmd is not "
                            "scanning: run=0 or no mergeable mm?)")
            k.run_until(k._timers[0][0])

    def pressure(self, parent: Any, step: S.Pressure) -> None:
        """spawn; mmap ``anon``; touch every page ``touches`` times; exit."""
        k = self.k
        self.pressure_count += 1
        cpu = step.cpu if step.cpu is not None else (1 if k.cpus > 1 else 0)
        t = k.spawn_task(f"pressure{self.pressure_count}", cpu=cpu, memcg=parent.memcg)
        try:
            addr = do_mmap(k, t, 0, step.anon, 3, 0x22)  # PROT_READ|WRITE, MAP_PRIVATE|ANON
            pages = (step.anon + PAGE_SIZE - 1) // PAGE_SIZE
            for _ in range(step.touches):
                for i in range(0, pages, PRESSURE_CHUNK):
                    n = min(PRESSURE_CHUNK, pages - i)
                    t.mm.lru_gen_ran = True
                    k.user_write(t, addr + i * PAGE_SIZE, n * PAGE_SIZE, k.touch_op(None))
                    k.flush()
        except OutOfMemory:
            k.vmstat["oom_kill"] += 1  # the OOM killer picks the pressure process
        finally:
            k.sys_exit(t)

    def observe(self, step: S.Print | S.Expect, task: Any) -> None:
        k = self.k
        k.flush()
        want = step.counters if isinstance(step, S.Print) else tuple(n for n, _ in step.values)
        c = k.counters(task, want or None)  # a print of no names prints every counter
        k.tick(k.costs.observe)  # reading the counters and writing the line take time too
        if isinstance(step, S.Print):
            names = step.counters or tuple(c)
            self.observations.append(Observation(
                step.index, step.label, "print", k.now, {n: c[n] for n in names},
                proc=step.proc, line=step.line))
            return
        values = {n: c[n] for n, _ in step.values}
        bad = tuple(n for n, cmp in step.values if not cmp.holds(c[n]))
        self.observations.append(Observation(
            step.index, step.label, "expect", k.now, values,
            {n: cmp.to_json() for n, cmp in step.values}, not bad, proc=step.proc,
            line=step.line, failed_keys=bad))

    # --- result ----------------------------------------------------------------------------
    def _result(self, error: StepFailure | None) -> RunResult:
        k = self.k
        res = RunResult(self.scenario.name, self.scenario.path, self.model.name, "passed",
                        self.observations, error, self.outcomes)
        res.known_failure_reason = known_failure_for(self.scenario, self.model)
        res.trace = [TraceEvent(e["time_ns"], e["step"], e["event"], e["text"], e["data"])
                     for e in k.trace_events]
        res.dumps = self.dumps
        res.final_time_ns = k.now
        res.ksmd_phase = k.ksmd_phase
        res.stats = dict(sorted(k.vmstat.items()))
        ok = res.expectations_ok
        if error is not None and error.errno is None and error.signal is None:
            ok = False  # an expected errno/signal that did not happen
        if error is not None and (error.errno or error.signal):
            res.status = "error"
        elif res.known_failure_reason is not None:
            res.status = "unexpected-pass" if ok else "known-failure"
        else:
            res.status = "passed" if ok else "failed"
        return res


def run_scenario(scenario: S.Scenario, model: Model | str, *, trace: bool = False,
                 ksmd_phase: Fraction = Fraction(0)) -> RunResult:
    """Run ``scenario`` on ``model`` (a Model or a model expression).

    ``ksmd_phase`` (in [0, 1)) shifts ksmd's passes that fraction of a cycle later against
    the steps (``ksmrepro phases``, docs/timing.md); 0 is the kernel's own timing.
    """
    if isinstance(model, str):
        model = resolve(model)
    return ScenarioRun(scenario, model, trace=trace, ksmd_phase=ksmd_phase).run()
