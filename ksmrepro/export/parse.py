"""The exported testcase's output -> a :class:`~ksmrepro.runner.results.RunResult`.

The program (``ksmrepro/export/c.py``) prints one line per event, always
starting ``KSMREPRO `` (after ``# `` in the kselftest format; a serial console
may add ``\\r``)::

    KSMREPRO begin steps=13 release=6.1.0-56-amd64
    KSMREPRO step=10 op=expect time_ns=1000512000 pages_shared=1 pages_sharing=1
    KSMREPRO step=4 op=print time_ns=9 ksm_merging_pages=-1 missing=ksm_merging_pages
    KSMREPRO step=11 op=pressure time_ns=9 exit=0          (or signal=SIGKILL)
    KSMREPRO step=6 op=ksm_wait time_ns=9 full_scans=4
    KSMREPRO step=6 errno=EINVAL                           (a system call failed)
    KSMREPRO step=6 errno=0 expected=EINVAL                (it should have failed)
    KSMREPRO step=7 signal=SIGSEGV                         (signal=none: it should have)
    KSMREPRO step=5 error=ksm_wait-timeout
    KSMREPRO-DUMP step=3 maps 7f0000000000-7f0000003000 rw-p ...
    KSMREPRO end

Verdicts are computed here, from the scenario's expected values, exactly as
for a model: a kernel's output is judged by the same rules.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

from ksmrepro.runner.results import Observation, RunResult, StepFailure
from ksmrepro.scenario.steps import Expect, MemoryReclaim, Print, Scenario

__all__ = ["RealRunResult", "known_failure_for_kernel", "parse_output"]

_LINE = re.compile(r"KSMREPRO(-DUMP)? (.*)$")
_FIELD = re.compile(r"(\S+?)=(\S*)")


@dataclass
class RealRunResult(RunResult):
    """A :class:`RunResult` from a real kernel, plus how it was obtained.

    ``to_json()`` is the plain RunResult document; :meth:`real_json` adds the rest.
    """

    release: str | None = None  # uname -r of the guest
    complete: bool = False  # the program printed its "end" line
    missing: dict[int, tuple[str, ...]] = field(default_factory=dict)  # counters the kernel lacks
    pressure: dict[int, str] = field(default_factory=dict)  # step -> "exit=0" / "signal=SIGKILL"
    accel: str | None = None  # "kvm" or "tcg"
    console_log: str | None = None  # the guest's serial console, kept on disk
    output_log: str | None = None  # the program's own output
    qemu_command: list[str] = field(default_factory=list)
    cmdline: str | None = None  # the guest kernel's command line
    elapsed_s: float | None = None  # wall time of the boot, power-on to power-off
    guest: dict[str, str] = field(default_factory=dict)  # what the guest's /init reported
    measured_at: str | None = None  # UTC time of the boot, ISO 8601

    def real_json(self) -> dict[str, Any]:
        """What ``to_json()`` leaves out: kernel release, accelerator, logs, timings."""
        return {
            "release": self.release, "accel": self.accel, "complete": self.complete,
            "missing": {str(k): list(v) for k, v in self.missing.items()},
            "pressure": {str(k): v for k, v in self.pressure.items()},
            "elapsed_s": self.elapsed_s, "cmdline": self.cmdline,
            "qemu_command": self.qemu_command, "console_log": self.console_log,
            "guest": self.guest, "measured_at": self.measured_at,
        }


def known_failure_for_kernel(scenario: Scenario, model: str) -> str | None:
    """The ``known_failures`` reason for a real kernel: a key equal to ``model``
    (``real:6.1.0-56-amd64``) or a glob matching it (``real:6.1.*``)."""
    for expr, reason in scenario.known_failures:
        if expr.startswith("real:") and fnmatch.fnmatchcase(model, expr):
            return reason
    return None


def _fields(rest: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    pairs = _FIELD.findall(rest)
    return dict(pairs), pairs


def _page_row(text: str) -> dict[str, Any]:
    """One ``pages`` dump line (pagemap, kpageflags, kpagecount) as the model's dump rows
    name things: addr, pte (present/swap), pfn, count, flags, ksm."""
    row: dict[str, Any] = dict(t.split("=", 1) for t in text.split() if "=" in t)
    if "count" in row:
        row["count"] = int(row["count"])
    if "flags" in row:
        row["ksm"] = "ksm" in row["flags"].split(",")
    return row


def parse_output(scenario: Scenario, text: str, model: str | None = None) -> RealRunResult:
    """Judge a run of ``export_c(scenario)`` from its output.

    :param model: the model name to report; default ``real:<release>`` from the
        program's ``begin`` line.
    """
    steps = {s.index: s for s in scenario.steps}
    res = RealRunResult(scenario.name, scenario.path, model or "real:unknown", "error")
    last_step = -1
    dumps: dict[int, dict[str, Any]] = {}
    for raw in text.splitlines():
        m = _LINE.search(raw.replace("\r", ""))
        if not m:
            continue
        rest = m.group(2).strip()
        if m.group(1):  # KSMREPRO-DUMP step=N maps <text> | pages addr=... pte=...
            parts = rest.split(" ", 2)
            if len(parts) == 3 and parts[0].startswith("step="):
                d = dumps.setdefault(int(parts[0][5:]), {"step": int(parts[0][5:])})
                d.setdefault(parts[1], []).append(
                    _page_row(parts[2]) if parts[1] == "pages" else parts[2])
            continue
        if rest.startswith("begin"):
            f, _ = _fields(rest)
            res.release = f.get("release")
            continue
        if rest == "end":
            res.complete = True
            continue
        f, pairs = _fields(rest)
        if "step" not in f:
            continue
        n = int(f["step"])
        last_step = max(last_step, n)
        step = steps.get(n)
        if "time_ns" in f:
            res.final_time_ns = max(res.final_time_ns, int(f["time_ns"]))
        op = f.get("op")
        if op in ("print", "expect", "dump"):
            skip = {"step", "op", "time_ns", "missing"}
            values = {k: int(v) for k, v in pairs if k not in skip}
            missing = tuple(x for x in f.get("missing", "").split(",") if x)
            if missing:
                res.missing[n] = missing
            if op == "dump":
                dumps.setdefault(n, {"step": n})["ksm"] = values
                continue
            if isinstance(step, Print) and step.counters is None:
                values = dict(sorted(values.items()))
            res.observations.append(_observation(step, n, op, int(f.get("time_ns", 0)),
                                                 values, missing))
        elif op == "pressure":
            res.pressure[n] = f"signal={f['signal']}" if "signal" in f else \
                f"exit={f.get('exit', '?')}"
        elif "errno" in f:
            _errno(res, step, n, f)
        elif "signal" in f:
            _signal(res, step, n, f)
        elif "error" in f:
            res.error = StepFailure(n, message=f"the test program gave up: {f['error']}",
                                    label=step.label if step else None,
                                    line=step.line if step else 0)
    if model is None and res.release:
        res.model = f"real:{res.release}"
    res.dumps = [dumps[k] for k in sorted(dumps)]
    _status(scenario, res, last_step)
    return res


def _observation(step: Any, n: int, op: str, time_ns: int, values: dict[str, int],
                 missing: tuple[str, ...]) -> Observation:
    label = step.label if step else None
    proc = step.proc if step else "main"
    line = step.line if step else 0
    if op == "print" or not isinstance(step, Expect):
        return Observation(n, label, "print", time_ns, values, proc=proc, line=line)
    bad = tuple(k for k, c in step.values
                if k in missing or k not in values or not c.holds(values[k]))
    return Observation(n, label, "expect", time_ns, values,
                       {k: c.to_json() for k, c in step.values}, not bad, proc=proc,
                       line=line, failed_keys=bad)


def _errno(res: RealRunResult, step: Any, n: int, f: dict[str, str]) -> None:
    label, line = (step.label, step.line) if step else (None, 0)
    errno = f["errno"]
    wanted = step.errno if step else None
    if errno == "0":
        res.error = StepFailure(n, message=f"expected {f.get('expected', wanted)}, "
                                "but the call succeeded", label=label, line=line)
    elif wanted == errno:
        res.step_outcomes.append(StepFailure(n, errno=errno, label=label, line=line,
                                             expected=True))
    elif isinstance(step, MemoryReclaim) and errno == "EAGAIN" and wanted is None:
        res.step_outcomes.append(StepFailure(
            n, errno=errno, label=label, line=line,
            message="memory.reclaim: less than the amount asked for could be reclaimed"))
    elif res.error is None:
        res.error = StepFailure(n, errno=errno, label=label, line=line)


def _signal(res: RealRunResult, step: Any, n: int, f: dict[str, str]) -> None:
    label, line = (step.label, step.line) if step else (None, 0)
    sig = f["signal"]
    if sig == "none":
        res.error = StepFailure(n, message=f"expected {f.get('expected', 'SIGSEGV')}, but the "
                                "memory access went through", label=label, line=line)
    elif step is not None and step.signal == sig:
        res.step_outcomes.append(StepFailure(n, signal=sig, label=label, line=line,
                                             expected=True))
    elif res.error is None:
        res.error = StepFailure(n, signal=sig, label=label, line=line)


def _status(scenario: Scenario, res: RealRunResult, last_step: int) -> None:
    if res.release is None and not res.observations and res.error is None:
        res.status = "error"
        res.error = StepFailure(0, message="the test program printed nothing: it did not run")
        return
    if res.error is None and not res.complete:
        res.status = "error"
        res.error = StepFailure(last_step + 1, message=(
            f"the output stops after step {last_step}: the program was killed, or the guest "
            "stopped"))
        return
    res.known_failure_reason = known_failure_for_kernel(scenario, res.model)
    ok = res.expectations_ok
    if res.known_failure_reason is not None:
        res.status = "unexpected-pass" if ok else "known-failure"
    else:
        res.status = "passed" if ok else "failed"
