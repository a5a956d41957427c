"""Interpret a scenario step by step against a fresh simulated kernel."""

from __future__ import annotations

from ksmrepro.models import DEFAULT_MODEL, Model, resolve
from ksmrepro.runner.results import Observation, RunResult
from ksmrepro.scenario.steps import Expect, Print, Scenario


def models_for(scenario: Scenario, cli_models: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The model expressions to run: the command line's, else the scenario's, else the default."""
    return list(cli_models) or list(scenario.models) or [DEFAULT_MODEL]


def _same_model(a: Model, b: Model) -> bool:
    return a.base.name == b.base.name and sorted(p.name for p in a.patches) == sorted(
        p.name for p in b.patches
    )


def known_failure_for(scenario: Scenario, model: Model) -> str | None:
    """The ``known_failures`` reason that applies to ``model``, if any."""
    for expr, reason in scenario.known_failures:
        if _same_model(resolve(expr), model):
            return reason
    return None


def run_scenario(scenario: Scenario, model: Model | str, *, trace: bool = False) -> RunResult:
    """Run ``scenario`` on ``model``.  PLACEHOLDER until the simulated kernel lands."""
    if isinstance(model, str):
        model = resolve(model)
    obs: list[Observation] = []
    for step in scenario.steps:
        if isinstance(step, Print):
            names = step.counters or ("pages_shared", "pages_sharing")
            obs.append(Observation(step.index, step.label, "print", 0, dict.fromkeys(names, 0),
                                   proc=step.proc, line=step.line))
        elif isinstance(step, Expect):
            values = {k: 0 for k, _ in step.values}
            bad = tuple(k for k, c in step.values if not c.holds(0))
            obs.append(Observation(step.index, step.label, "expect", 0, values,
                                   {k: c.to_json() for k, c in step.values}, not bad,
                                   proc=step.proc, line=step.line, failed_keys=bad))
    res = RunResult(scenario.name, scenario.path, model.name, "passed", obs)
    res.known_failure_reason = known_failure_for(scenario, model)
    ok = res.expectations_ok
    if res.known_failure_reason is not None:
        res.status = "unexpected-pass" if ok else "known-failure"
    else:
        res.status = "passed" if ok else "failed"
    return res
