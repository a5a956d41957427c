"""The runner: scenario -> simulated kernel -> observations.  Returns data, never prints."""

from ksmrepro.runner.results import Observation, RunResult, StepFailure, TraceEvent
from ksmrepro.runner.run import known_failure_for, models_for, run_scenario

__all__ = [
    "Observation", "RunResult", "StepFailure", "TraceEvent",
    "known_failure_for", "models_for", "run_scenario",
]
