"""Calibration: a model's observations beside a real kernel's, counter by counter.

Real-kernel observations are kept as golden files, one per scenario and kernel
release, in ``scenarios/calibration/golden/<scenario name>.<release>.json``::

    {
      "version": 1,
      "scenario": "ksm-mremap-swapout",
      "file": "scenarios/hugh.yaml",
      "kernel": {"release": "6.1.0-56-amd64", "source": "Debian linux-image-6.1.0-56-amd64"},
      "reference_model": "v6.1",
      "qemu_accel": "tcg",
      "measured": "2026-11-26",
      "runs": [
        {"measured_at": "2026-11-26T12:21:37Z", "result": {RunResult.to_json()},
         "real": {"accel": "tcg", "elapsed_s": 52.2, "cmdline": "...", "guest": {...}}}
      ]
    }

Each run is one boot; several boots show how repeatable a kernel's answer is.
CI compares the models with these files without booting anything
(:func:`compare_with_golden`); ``ksmrepro calibrate --kernel ... --save``
measures them again.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ksmrepro.errors import KsmreproError
from ksmrepro.export.parse import RealRunResult
from ksmrepro.runner.results import RunResult
from ksmrepro.scenario.steps import Comparison, Expect, Scenario

__all__ = [
    "AgreementRow",
    "GOLDEN_VERSION",
    "GoldenFile",
    "agreement_rows",
    "calibration_scenarios",
    "compare_with_golden",
    "find_golden",
    "golden_dir_for",
    "golden_path",
    "load_golden",
    "save_golden",
]

GOLDEN_VERSION = 1
_MAY_BE_NEGATIVE = ("general_profit", "ksm_process_profit")  # -1 is a value for these


@dataclass(frozen=True)
class AgreementRow:
    """One counter of one observation: the model's value beside the kernel's."""

    scenario: str
    kernel: str  # "real:6.1.0-56-amd64"
    step: int
    label: str | None
    op: str  # "print" | "expect" | "outcome"
    counter: str
    model: int | str | None  # None: the model has no such observation
    kernel_values: tuple[int | str | None, ...]  # one per boot
    agree: str  # "yes" | "no" | "partly" (some boots) | "n/a" (not comparable)
    model_name: str = ""  # the model expression the model value comes from

    @property
    def observation(self) -> str:
        where = f"step {self.step}" + (f" ({self.label})" if self.label else "")
        return f"{self.scenario} {where} {self.counter}"

    @property
    def kernel_text(self) -> str:
        """``"1"`` when every boot agrees, else ``"1 ×2, 0 ×1"``."""
        counts = Counter("-" if v is None else str(v) for v in self.kernel_values)
        if len(counts) == 1:
            return next(iter(counts))
        return ", ".join(f"{v} ×{n}" for v, n in counts.most_common())


@dataclass
class GoldenFile:
    """A golden file: one scenario on one kernel, one or more boots."""

    path: Path
    data: dict[str, Any]

    @property
    def release(self) -> str:
        return str(self.data["kernel"]["release"])

    @property
    def runs(self) -> list[dict[str, Any]]:
        return list(self.data.get("runs", []))

    @property
    def reference_model(self) -> str | None:
        m = self.data.get("reference_model")
        return str(m) if m else None


def golden_dir_for(scenario_path: str | Path) -> Path:
    """Where a scenario's golden files live: the nearest ``calibration/golden`` above it."""
    p = Path(scenario_path).resolve()
    for parent in p.parents:
        if parent.name == "calibration" and (parent / "golden").is_dir():
            return parent / "golden"
        if (parent / "calibration" / "golden").is_dir():
            return parent / "calibration" / "golden"
    return p.parent / "calibration" / "golden"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name)


def golden_path(golden_dir: Path, scenario_name: str, release: str) -> Path:
    return golden_dir / f"{_safe(scenario_name)}.{_safe(release)}.json"


def load_golden(path: Path) -> GoldenFile:
    """:raises KsmreproError: not a golden file of a version this ksmrepro reads."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KsmreproError(f"{path}: cannot read golden file: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != GOLDEN_VERSION \
            or "kernel" not in data or "runs" not in data:
        raise KsmreproError(f"{path}: not a version {GOLDEN_VERSION} golden file")
    return GoldenFile(path, data)


def find_golden(scenario: Scenario, golden_dir: Path | None = None) -> list[GoldenFile]:
    """The golden files recorded for ``scenario`` (by name), sorted by kernel release."""
    d = golden_dir or golden_dir_for(scenario.path)
    files = sorted(d.glob(f"{_safe(scenario.name)}.*.json")) if d.is_dir() else []
    out = [load_golden(f) for f in files]
    return [g for g in out if g.data.get("scenario") == scenario.name]


def calibration_scenarios(golden_dir: Path, scenario_dir: Path | None = None) -> list[Path]:
    """The default set: ``scenarios/calibration/*.yaml`` and every scenario a golden file names."""
    scenario_dir = scenario_dir or golden_dir.parent
    paths = sorted(scenario_dir.glob("*.yaml")) + sorted(scenario_dir.glob("*.yml"))
    root = scenario_dir.parent.parent  # scenarios/calibration -> the project
    for g in sorted(golden_dir.glob("*.json")) if golden_dir.is_dir() else []:
        f = load_golden(g).data.get("file")
        if f:
            p = Path(f) if Path(f).is_absolute() else root / f
            if p.is_file() and p.resolve() not in {q.resolve() for q in paths}:
                paths.append(p)
    return paths


def save_golden(scenario: Scenario, results: Sequence[RealRunResult], golden_dir: Path, *,
                reference_model: str | None = None, kernel_source: str | None = None,
                file: str | None = None) -> Path:
    """Write the golden file for ``results`` (boots of one kernel); returns its path."""
    if not results:
        raise KsmreproError("no real-kernel runs to save")
    release = results[0].release or results[0].model.removeprefix("real:")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    runs = []
    for r in results:
        real = r.real_json()
        for private in ("console_log", "qemu_command"):  # paths on the measuring machine
            real.pop(private, None)
        runs.append({"measured_at": r.measured_at or
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "result": r.to_json(), "real": real})
    data = {
        "version": GOLDEN_VERSION,
        "scenario": scenario.name,
        "file": file or scenario.path,
        "kernel": {"release": release, "source": kernel_source},
        "reference_model": reference_model,
        "qemu_accel": ",".join(sorted({r.accel or "?" for r in results})),
        "measured": today,
        "runs": runs,
    }
    if file is None:
        root = golden_dir.resolve().parents[2]  # <root>/scenarios/calibration/golden
        here = Path(scenario.path).resolve()
        file = str(here.relative_to(root)) if here.is_relative_to(root) else scenario.path
        data["file"] = file
    golden_dir.mkdir(parents=True, exist_ok=True)
    path = golden_path(golden_dir, scenario.name, release)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def _kernel_runs(golden: GoldenFile | Sequence[RunResult]) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(golden, GoldenFile):
        return f"real:{golden.release}", [r["result"] for r in golden.runs]
    runs = [r.to_json() for r in golden]
    return (golden[0].model if golden else "real:?"), runs


def _outcome(run: dict[str, Any] | None) -> str:
    if run is None:
        return "-"
    err = run.get("error")
    if not err:
        return "ok"
    what = err.get("errno") or err.get("signal") or err.get("message", "error")
    return f"{what} at step {err.get('step')}"


def agreement_rows(scenario: Scenario, model_result: RunResult,
                   golden: GoldenFile | Sequence[RunResult]) -> list[AgreementRow]:
    """Rows for every counter the kernel runs observed (and the run's outcome)."""
    kernel, runs = _kernel_runs(golden)
    model_obs = {o.step: o for o in model_result.observations}
    steps: dict[int, dict[str, Any]] = {}
    for run in runs:
        for o in run.get("observations", []):
            steps.setdefault(o["step"], o)
    expects = {s.index: dict(s.values) for s in scenario.steps if isinstance(s, Expect)}
    rows: list[AgreementRow] = []
    for n in sorted(steps):
        first = steps[n]
        mo = model_obs.get(n)
        compared = expects.get(n, {})
        for counter in first["values"]:
            kvals: list[int | str | None] = []
            for run in runs:
                o = next((x for x in run.get("observations", []) if x["step"] == n), None)
                v = o["values"].get(counter) if o else None
                if v == -1 and counter not in _MAY_BE_NEGATIVE:
                    v = None  # the kernel has no such counter
                kvals.append(v)
            mv = mo.values.get(counter) if mo else None
            cmp = compared.get(counter)
            if cmp is not None and cmp.op != "==":
                # the scenario claims only the comparison (swap_ents: ">= 1"): both sides
                # agree when they answer it alike, whatever the exact counts
                agree = _agree(_holds(cmp, mv), [_holds(cmp, k) for k in kvals])
            else:
                agree = _agree(mv, kvals)
            rows.append(AgreementRow(scenario.name, kernel, n, first.get("label"), first["op"],
                                     counter, mv, tuple(kvals), agree, model_result.model))
    model_outcome = _outcome(model_result.to_json())
    kernel_outcomes: tuple[int | str | None, ...] = tuple(_outcome(r) for r in runs)
    if model_outcome != "ok" or any(k != "ok" for k in kernel_outcomes):
        rows.append(AgreementRow(scenario.name, kernel, len(scenario.steps), None, "outcome",
                                 "outcome", model_outcome, kernel_outcomes,
                                 _agree(model_outcome, list(kernel_outcomes)),
                                 model_result.model))
    return rows


def _holds(cmp: Comparison, value: int | str | None) -> bool | None:
    return cmp.holds(value) if isinstance(value, int) else None


def _agree(model: int | str | bool | None, kernel: list[int | str | bool | None]) -> str:
    known = [k for k in kernel if k is not None]
    if model is None or not known:
        return "n/a"
    same = sum(k == model for k in known)
    if same == len(known):
        return "yes"
    return "partly" if same else "no"


def compare_with_golden(scenario_path: str | Path, model_expr: str | None = None, *,
                        golden_dir: str | Path | None = None) -> list[AgreementRow]:
    """Run the scenario on a model and compare with every golden file recorded for it.

    :param model_expr: the model (expression); default each golden file's
        ``reference_model``, else the scenario's first model.
    :raises KsmreproError: no golden file for the scenario (or an invalid one).
    """
    from ksmrepro import runner
    from ksmrepro.scenario.loader import load_scenario

    scenario = load_scenario(str(scenario_path))
    goldens = find_golden(scenario, Path(golden_dir) if golden_dir else None)
    if not goldens:
        d = golden_dir or golden_dir_for(scenario.path)
        raise KsmreproError(f"{scenario_path}: no golden real-kernel file for "
                            f"{scenario.name!r} in {d}")
    rows: list[AgreementRow] = []
    for g in goldens:
        model = model_expr or g.reference_model or runner.models_for(scenario)[0]
        result = runner.run_scenario(scenario, model)
        rows += agreement_rows(scenario, result, g)
    return rows
