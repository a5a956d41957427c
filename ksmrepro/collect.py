"""Finding scenario files and planning runs: what ``ksmrepro run`` and the pytest plugin collect.

A file is a scenario when it is a ``*.yaml``/``*.yml`` file whose top level is a
mapping with a ``steps:`` key.  Model files are never scenarios: a file under a
``scenarios/models/`` directory, or one that declares ``kind: models``.  Loading is
``ksmrepro.scenario.loader``'s; this module only finds files, selects scenarios
and plans the scenario × model jobs.  It never prints.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ksmrepro.errors import KsmreproError, ModelError

if TYPE_CHECKING:
    from ksmrepro.scenario.steps import Scenario

__all__ = [
    "SCENARIO_SUFFIXES",
    "Job",
    "find_scenarios",
    "in_models_dir",
    "is_scenario_file",
    "load",
    "looks_like_scenario",
    "plan",
    "select",
    "with_dump_after",
]

SCENARIO_SUFFIXES = (".yaml", ".yml")

_GLOB_CHARS = re.compile(r"[*?\[]")
# Fallbacks for YAML that does not parse: its error must still be reported when it
# is meant to be a scenario, so decide on the top-level keys as text.
_STEPS_KEY = re.compile(r"^steps[ \t]*:", re.MULTILINE)


def in_models_dir(path: str | os.PathLike[str]) -> bool:
    """True for a file under a ``scenarios/models/`` directory (model files, not scenarios)."""
    parts = Path(os.path.abspath(path)).parts[:-1]
    return any(a == "scenarios" and b == "models" for a, b in zip(parts, parts[1:], strict=False))


def looks_like_scenario(text: str) -> bool:
    """True when ``text`` is YAML whose top level is a mapping with ``steps:``, not ``kind: models``."""
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError:
        from ksmrepro.models.userfile import declares_kind_models

        return bool(_STEPS_KEY.search(text)) and not declares_kind_models(text)
    return isinstance(data, dict) and "steps" in data and data.get("kind") != "models"


def is_scenario_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a scenario file (see the module docstring).

    Never raises: an unreadable file is not a scenario.
    """
    p = Path(path)
    if p.suffix not in SCENARIO_SUFFIXES or not p.is_file() or in_models_dir(p):
        return False
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return looks_like_scenario(text)


def _walk(directory: str) -> Iterator[str]:
    # os.walk with sorted names: the order of runs (and of the JSON report) must not
    # depend on the file system.  Hidden directories (.git, .venv, ...) are skipped.
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(SCENARIO_SUFFIXES):
                path = os.path.normpath(os.path.join(root, name))
                if is_scenario_file(path):
                    yield path


def _expand(arg: str) -> list[str]:
    if os.path.isdir(arg):
        found = list(_walk(arg))
        if not found:
            raise KsmreproError(f"{arg}: no scenario files (*.yaml with steps:) in this directory")
        return found
    if os.path.exists(arg):
        return [arg]  # named explicitly: the loader says what is wrong with it, if anything
    if _GLOB_CHARS.search(arg):
        out: list[str] = []
        for match in sorted(glob.glob(arg, recursive=True)):
            if os.path.isdir(match):
                out.extend(_walk(match))
            elif is_scenario_file(match):
                out.append(match)
        if not out:
            raise KsmreproError(f"{arg}: the pattern matches no scenario file")
        return out
    raise KsmreproError(f"{arg}: no such file or directory")


def find_scenarios(args: Iterable[str]) -> list[str]:
    """Expand ``FILE|DIR|GLOB`` arguments into scenario file paths.

    Directories are searched recursively; files come in argument order, then sorted
    within a directory or a pattern, each once.

    :raises KsmreproError: an argument that does not exist or finds no scenario.
    """
    seen: set[str] = set()
    out: list[str] = []
    for arg in args:
        for path in _expand(arg):
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                out.append(path)
    return out


def load(path: str) -> Scenario:
    """Load one scenario file.

    :raises ScenarioError: the file is not a valid scenario.
    """
    from ksmrepro.scenario import loader

    return loader.load_scenario(path)


@dataclass(frozen=True)
class Job:
    """One scenario on one model (a model expression)."""

    scenario: Scenario
    model: str
    trace: bool = False
    ksmd_phase: Fraction = Fraction(0)  # ksmrepro phases / run --ksmd-phase (docs/timing.md)


def select(scenarios: Sequence[Scenario], keyword: str | None,
           tags: Sequence[str]) -> list[Scenario]:
    """Scenarios whose name or path contains ``keyword`` and that carry one of ``tags``.

    :raises KsmreproError: nothing is selected (a typo must not look like a green run)
    """
    out = [
        s for s in scenarios
        if (keyword is None or keyword in s.name or keyword in s.path)
        and (not tags or set(tags) & set(s.tags))
    ]
    if not out and scenarios:
        what = [f"-k {keyword!r}"] if keyword is not None else []
        what += [f"--tag {t!r}" for t in tags]
        raise KsmreproError(f"no scenario matches {' '.join(what)} "
                            f"(of {len(scenarios)} loaded)")
    return out


def with_dump_after(scenario: Scenario, spec: str) -> Scenario:
    """``scenario`` with a ``dump`` step after step ``spec`` (an index or a label).

    The dump takes the index of the step it follows, so every real step keeps its
    number in the reports.
    """
    from ksmrepro.scenario.steps import Dump

    for i, step in enumerate(scenario.steps):
        if str(step.index) == spec.strip() or (step.label is not None and step.label == spec):
            dump = Dump(index=step.index, line=step.line, column=step.column, proc=step.proc)
            return replace(scenario, steps=(*scenario.steps[: i + 1], dump,
                                            *scenario.steps[i + 1:]))
    last = len(scenario.steps) - 1
    raise KsmreproError(f"--dump-after {spec}: {scenario.path} has no such step "
                        f"(steps are 0..{last}, or a step's label)")


def plan(scenarios: Sequence[Scenario], cli_models: Sequence[str], *, trace: bool = False,
         dump_after: str | None = None, ksmd_phase: Fraction = Fraction(0)) -> list[Job]:
    """The jobs to run, in report order.  Every model is resolved first, after installing
    the model files found next to the scenarios (``models.userfile.model_files_near``).

    :raises ModelError: an unknown model, on the command line or in a scenario, or an
        invalid model file
    """
    from ksmrepro.models import resolve
    from ksmrepro.models.userfile import ensure_model_files_near
    from ksmrepro.runner import models_for

    for scenario in scenarios:
        # model files next to the scenario (scenarios/models/*.yaml): docs/models.md
        ensure_model_files_near(scenario.path)
    for expr in cli_models:
        try:
            resolve(expr)
        except ModelError as exc:
            raise ModelError(f"--model {expr}: {exc}") from None
    jobs = []
    for scenario in scenarios:
        if dump_after is not None:
            scenario = with_dump_after(scenario, dump_after)
        exprs = models_for(scenario, list(cli_models))
        for where, names in (("models", exprs), ("known_failures",
                                                 [e for e, _ in scenario.known_failures])):
            for expr in names:
                try:
                    resolve(expr)
                except ModelError as exc:
                    raise ModelError(f"{scenario.path}: {where}: {exc}") from None
        jobs += [Job(scenario, expr, trace, ksmd_phase) for expr in exprs]
    return jobs
