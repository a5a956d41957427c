"""What one run says about its model: the raw outcome, an observation, or "cannot run".

The *raw* outcome ignores ``known_failures``: it is whether every expectation held (and no
step failed unexpectedly), which is what ``bisect`` compares between points and what
``ksmrepro run --no-known-failures`` judges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ksmrepro.runner.results import Observation, RunResult
    from ksmrepro.scenario.steps import Scenario

__all__ = ["UNSUPPORTED_PHRASES", "cannot_run", "find_step", "observation_at", "raw_ok"]

#: what the simulated kernel's errno messages say when a step needs something the model
#: lacks (ksmrepro.mm raises a plain Errno; these phrases are how it says "unsupported")
UNSUPPORTED_PHRASES = ("not modelled", "not known to this kernel")


def raw_ok(result: RunResult) -> bool:
    """Every expectation held and no step failed (``known_failures`` not consulted)."""
    return result.expectations_ok


def cannot_run(result: RunResult, scenario: Scenario | None = None) -> str | None:
    """Why the scenario cannot run on this model (git bisect's "skip"), or None.

    A run cannot be judged when it stopped at a step that the model's kernel lacks:

    - the step failed with ``ENOSYS`` (the call does not exist there, or ksmrepro does not
      model it, e.g. memory cgroups);
    - a ``sysfs`` step failed with ``ENOENT`` (that kernel has no such knob file);
    - the step was refused because that kernel does not know the call (``prctl`` of an
      option newer than the kernel: "not known to this kernel"), or because ksmrepro does
      not model the feature ("not modelled": shmem, the multi-gen LRU; ksmrepro refuses
      rather than answer wrongly).

    A step that *asked* for that errno (``errno: ENOSYS``) is an outcome, not a reason.
    """
    err = result.error
    if err is None or err.expected or err.errno is None:
        return None
    op = None
    if scenario is not None:
        op = next((s.KEY for s in scenario.steps if s.index == err.step), None)
    what = f"step {err.step}{f' ({op})' if op else ''}: {err.errno}"
    if err.message:
        what += f" — {err.message}"
    if err.unsupported or err.errno == "ENOSYS" or (err.errno == "ENOENT" and op == "sysfs"):
        return what
    if any(phrase in err.message for phrase in UNSUPPORTED_PHRASES):
        return what
    return None


def find_step(scenario: Scenario, spec: str) -> int:
    """The index of the step ``spec`` names (its index, or its ``label``) that observes:
    a ``print`` or an ``expect``.

    :raises ValueError: no such step, or it is not a print/expect (the message says which)
    """
    observing = [s for s in scenario.steps if s.KEY in ("print", "expect")]
    for s in scenario.steps:
        if str(s.index) == spec.strip() or (s.label is not None and s.label == spec):
            if s.KEY not in ("print", "expect"):
                raise ValueError(f"step {s.index} is a {s.KEY} step; it observes nothing "
                                 f"(observing steps: {_listing(observing)})")
            return s.index
    raise ValueError(f"{scenario.path} has no step {spec!r} "
                     f"(observing steps: {_listing(observing)})")


def _listing(steps: list) -> str:  # type: ignore[type-arg]
    return ", ".join(f"{s.index}{f' {s.label!r}' if s.label else ''} ({s.KEY})"
                     for s in steps) or "none"


def observation_at(result: RunResult, step: int) -> Observation | None:
    """The observation step ``step`` recorded, or None (the run stopped before it)."""
    return next((o for o in result.observations if o.step == step), None)
