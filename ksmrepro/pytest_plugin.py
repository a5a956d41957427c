"""pytest plugin: scenario files as tests, one test per scenario × model.

Load it explicitly (there is no ``pytest11`` entry point, so it never loads by
itself)::

    pytest -p ksmrepro.pytest_plugin --ksmrepro scenarios/

or in ``pyproject.toml``::

    [tool.pytest.ini_options]
    addopts = "-p ksmrepro.pytest_plugin"
    ksmrepro_scenarios = true

Collection is opt-in even when the plugin is loaded: only with ``--ksmrepro`` or
``ksmrepro_scenarios = true``, and only for ``*.yaml``/``*.yml`` files that are
scenarios (a top-level mapping with ``steps:``, not a model file), so other YAML
in the project is never collected.  Test ids are ``hugh.yaml::MODEL``; a
``known_failures`` entry becomes ``xfail(strict=True)``, so an unexpected pass
fails.  A failure is reported as the same mismatch block ``ksmrepro run`` prints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ksmrepro.collect import SCENARIO_SUFFIXES, is_scenario_file
from ksmrepro.errors import KernelBug, KsmreproError

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from ksmrepro.analysis.phases import PhaseSweep
    from ksmrepro.runner.results import RunResult
    from ksmrepro.scenario.steps import Scenario

__all__ = ["ScenarioFailedError", "ScenarioFile", "ScenarioItem", "TimingDependentError"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ksmrepro", "ksmrepro scenarios")
    group.addoption("--ksmrepro", action="store_true", default=False,
                    help="collect ksmrepro scenario files (*.yaml with steps:) as tests")
    group.addoption("--ksmrepro-model", action="append", default=[], metavar="MODEL",
                    help="run scenarios on this model (repeatable) instead of their models:")
    group.addoption("--ksmrepro-phases", type=int, default=1, metavar="N",
                    help="run each scenario at N ksmd phases (ksmrepro phases) and fail a test "
                         "whose outcome depends on the phase (default 1: the plain run)")
    parser.addini("ksmrepro_scenarios", type="bool", default=False,
                  help="collect ksmrepro scenario files as tests (like --ksmrepro)")


def pytest_configure(config: pytest.Config) -> None:
    from ksmrepro.analysis.phases import MAX_PHASES

    n = config.getoption("ksmrepro_phases", 1)
    if not 1 <= n <= MAX_PHASES:
        raise pytest.UsageError(f"--ksmrepro-phases {n}: expected 1..{MAX_PHASES}")


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("ksmrepro")) or bool(config.getini("ksmrepro_scenarios"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    if (file_path.suffix in SCENARIO_SUFFIXES and _enabled(parent.config)
            and is_scenario_file(file_path)):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class TimingDependentError(Exception):
    """The outcome depends on where ksmd's passes fall (``--ksmrepro-phases``)."""

    def __init__(self, sweep: PhaseSweep) -> None:
        super().__init__("timing-dependent")
        self.sweep = sweep


class ScenarioFailedError(Exception):
    """A run that did not pass: its mismatch block is the failure report."""

    def __init__(self, result: RunResult, scenario: Scenario) -> None:
        super().__init__(result.status)
        self.result = result
        self.scenario = scenario


def _display_path(path: Path) -> str:
    # Relative to where pytest was started, as ``ksmrepro run`` shows it.
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


def _sweep_text(swept: PhaseSweep) -> str:
    import io

    from rich.console import Console

    from ksmrepro.analysis.render import phase_sweep_renderable

    out = io.StringIO()
    Console(file=out, width=100, color_system=None, highlight=False).print(
        phase_sweep_renderable(swept))
    return out.getvalue().rstrip()


class ScenarioFile(pytest.File):
    """A scenario file: one :class:`ScenarioItem` per model it runs on."""

    def collect(self) -> Iterator[ScenarioItem]:
        from ksmrepro import collect

        try:
            scenario = collect.load(_display_path(self.path))
            jobs = collect.plan([scenario], self.config.getoption("ksmrepro_model") or ())
        except KsmreproError as exc:
            raise self.CollectError(f"error: {exc}") from None
        for job in jobs:
            yield ScenarioItem.from_parent(self, name=job.model, scenario=job.scenario,
                                           model=job.model)


class ScenarioItem(pytest.Item):
    """One scenario on one model."""

    def __init__(self, *, scenario: Scenario, model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from ksmrepro.models import resolve
        from ksmrepro.runner import known_failure_for

        self.scenario = scenario
        self.model = model
        self.result: RunResult | None = None
        self.known_failure = known_failure_for(scenario, resolve(model))
        # `-k TAG` selects scenarios by their tags.
        self.extra_keyword_matches.update(scenario.tags)
        if self.known_failure is not None:
            reason = " ".join(self.known_failure.split())
            self.add_marker(pytest.mark.xfail(reason=f"known failure: {reason}", strict=True,
                                              raises=ScenarioFailedError))

    def runtest(self) -> None:
        from ksmrepro import runner

        n = self.config.getoption("ksmrepro_phases")
        if n > 1:
            from ksmrepro.analysis.phases import sweep

            swept = sweep(self.scenario, self.model, n, workers=1)
            if swept.outcome_dependent:
                raise TimingDependentError(swept)
            result = swept.results[0]
        else:
            result = runner.run_scenario(self.scenario, self.model)
        self.result = result
        if result.status == "passed":
            return
        if result.status == "unexpected-pass" and self.known_failure is not None:
            return  # xfail(strict=True) turns this into a failure: [XPASS(strict)]
        raise ScenarioFailedError(result, self.scenario)

    def repr_failure(self, excinfo: ExceptionInfo[BaseException],
                     style: Any = None) -> str | TerminalRepr:
        from ksmrepro.report.text import mismatch_block

        exc = excinfo.value
        if isinstance(exc, ScenarioFailedError):
            return mismatch_block(exc.result, exc.scenario)
        if isinstance(exc, TimingDependentError):
            return _sweep_text(exc.sweep)
        if isinstance(exc, KernelBug):
            return f"kernel bug (a simulated VM_BUG_ON: a bug in ksmrepro): {exc}"
        if isinstance(exc, KsmreproError):
            return f"error: {exc}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        # pytest counts lines from 0 here; line_of_name counts from 1.
        line = max(self.scenario.line_of_name - 1, 0)
        return self.path, line, f"scenario: {self.scenario.name}[{self.model}]"
