"""Every scenario shipped under scenarios/ runs on each of its models and holds.

The calibration scenarios (scenarios/ksm/, docs/calibration.md) carry the expected values of
the kernel's own tests (tools/testing/selftests/mm, LTP mem/ksm); the others carry what the
kernel is known to do.  A run passes when its status is ``passed``, or ``known-failure``
where the scenario's ``known_failures`` names the model (a real kernel-version difference).
Scenarios under scenarios/models/ and the golden files under scenarios/calibration/golden/
are not runnable testcases of their own and are left out.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ksmrepro.runner import RunResult, models_for, run_scenario
from ksmrepro.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
EXCLUDED = (SCENARIOS / "models", SCENARIOS / "calibration" / "golden")
OK_STATUSES = ("passed", "known-failure")
# Each scenario x model should run "well under a second"; this only catches a runaway.
TIME_LIMIT_S = 5.0


def _scenario_files() -> list[Path]:
    files = sorted(p for p in SCENARIOS.rglob("*") if p.suffix in (".yaml", ".yml"))
    return [p for p in files if not any(p.is_relative_to(x) for x in EXCLUDED)]


def _cases() -> list[pytest.param]:
    cases = []
    for path in _scenario_files():
        rel = path.relative_to(SCENARIOS).as_posix()
        try:
            models = models_for(load_scenario(path))
        except Exception as e:  # noqa: BLE001 - reported by the test itself
            cases.append(pytest.param(path, None, e, id=f"{rel}::load"))
            continue
        cases.extend(pytest.param(path, m, None, id=f"{rel}::{m}") for m in models)
    return cases


def _observations(res: RunResult) -> str:
    lines = [f"{res.scenario} ({res.file}) on {res.model}: {res.status}"]
    if res.known_failure_reason:
        lines.append(f"  known_failures: {res.known_failure_reason}")
    for o in res.observations:
        where = o.label or f"step {o.step}"
        mark = {True: "ok", False: "FAIL", None: "print"}[o.ok]
        if o.expected is None:
            vals = ", ".join(f"{k}={v}" for k, v in o.values.items())
        else:
            vals = ", ".join(f"{k}={o.values[k]} (expected {o.expected[k]})" for k in o.values)
        lines.append(f"  [{mark}] {where} [{o.proc}]: {vals}")
    if res.error is not None:
        e = res.error
        lines.append(f"  error at step {e.step}: {e.errno or e.signal or ''} {e.message}")
    return "\n".join(lines)


def test_scenarios_found() -> None:
    names = {p.relative_to(SCENARIOS).as_posix() for p in _scenario_files()}
    assert "ksm/merge.yaml" in names
    assert not any(n.startswith(("models/", "calibration/golden/")) for n in names)


@pytest.mark.parametrize(("path", "model", "load_error"), _cases())
def test_scenario(path: Path, model: str | None, load_error: Exception | None) -> None:
    if load_error is not None:
        pytest.fail(f"{path}: {load_error}")
    scenario = load_scenario(path)
    t0 = time.perf_counter()
    res = run_scenario(scenario, model)
    elapsed = time.perf_counter() - t0
    assert res.status in OK_STATUSES, _observations(res)
    assert elapsed < TIME_LIMIT_S, f"{path} on {model} took {elapsed:.2f}s\n{_observations(res)}"
