"""What a run produces: plain data, rendered by ``ksmrepro.report``."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

__all__ = ["Observation", "RunResult", "StepFailure", "TraceEvent", "STATUSES"]

STATUSES = ("passed", "failed", "known-failure", "unexpected-pass", "error")


@dataclass(frozen=True)
class TraceEvent:
    """One kernel event, named after the kernel function or tracepoint that produced it."""

    time_ns: int
    step: int
    event: str  # e.g. "rmap_walk_ksm", "folio_referenced", "try_to_unmap", "ksm_merge_one_page"
    text: str  # one line in kernel terms
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"time_ns": self.time_ns, "step": self.step, "event": self.event,
                "text": self.text, "data": self.data}


@dataclass(frozen=True)
class Observation:
    """A ``print`` or ``expect`` step's reading (contract: scenario-format.md, JSON report)."""

    step: int
    label: str | None
    op: str  # "print" | "expect"
    time_ns: int
    values: dict[str, int]
    expected: dict[str, int | str] | None = None
    ok: bool | None = None
    proc: str = "main"
    line: int = 0
    failed_keys: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "label": self.label, "op": self.op, "time_ns": self.time_ns,
                "values": self.values, "expected": self.expected, "ok": self.ok}


@dataclass(frozen=True)
class StepFailure:
    """A step that failed the way the syscall fails (errno) or faulted (signal)."""

    step: int
    errno: str | None = None
    signal: str | None = None
    message: str = ""
    label: str | None = None
    line: int = 0
    expected: bool = False  # the step said `errno:`/`signal:` and this is that outcome
    unsupported: bool = False  # the model's kernel lacks the call or knob (git bisect: skip)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"step": self.step}
        if self.errno is not None:
            d["errno"] = self.errno
        if self.signal is not None:
            d["signal"] = self.signal
        if self.message:
            d["message"] = self.message
        return d


@dataclass
class RunResult:
    """One scenario on one model."""

    scenario: str
    file: str
    model: str
    status: str  # one of STATUSES
    observations: list[Observation] = field(default_factory=list)
    error: StepFailure | None = None
    # errno/signal outcomes a step asked for (not failures), in step order
    step_outcomes: list[StepFailure] = field(default_factory=list)
    known_failure_reason: str | None = None
    trace: list[TraceEvent] = field(default_factory=list)
    dumps: list[dict[str, Any]] = field(default_factory=list)
    final_time_ns: int = 0
    stats: dict[str, int] = field(default_factory=dict)
    ksmd_phase: Fraction = Fraction(0)  # run --ksmd-phase / ksmrepro phases (docs/timing.md)

    @property
    def expectations_ok(self) -> bool:
        return self.error is None and all(o.ok is not False for o in self.observations)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "file": self.file,
            "model": self.model,
            "status": self.status,
            "observations": [o.to_json() for o in self.observations],
            "error": self.error.to_json() if self.error else None,
        } | ({"ksmd_phase": str(self.ksmd_phase)} if self.ksmd_phase else {})
