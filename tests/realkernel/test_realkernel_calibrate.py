"""Calibration: golden real-kernel files, agreement rows, and the calibrate/export commands."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ksmrepro.export.command import command as export_command
from ksmrepro.export.parse import parse_output
from ksmrepro.realkernel import calibrate as cal
from ksmrepro.realkernel.command import command as calibrate_command
from ksmrepro.runner.results import STATUSES, Observation, RunResult
from ksmrepro.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_DIR = ROOT / "scenarios" / "calibration" / "golden"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))
MERGE = ROOT / "scenarios" / "calibration" / "ksm-merge-identical.yaml"


def _real(scenario, *lines, release="6.1.0-56-amd64"):
    text = "\n".join([f"KSMREPRO begin steps={len(scenario.steps)} release={release}", *lines,
                      "KSMREPRO end"])
    res = parse_output(scenario, text)
    res.accel = "tcg"
    res.elapsed_s = 8.4
    return res


def _model(scenario, values_by_step, model="v6.1"):
    obs = [Observation(step, None, "expect", 0, values) for step, values in values_by_step]
    return RunResult(scenario.name, scenario.path, model, "passed", obs)


# -- the committed golden files ------------------------------------------------------------------

def test_golden_files_exist():
    names = {json.loads(p.read_text())["scenario"] for p in GOLDEN_FILES}
    assert {"ksm-mremap-swapout", "hugh-no-mremap", "ksm-merge-identical",
            "ksm-unmerge-on-write", "ksm-zero-pages"} <= names


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_golden_file_is_well_formed(path):
    g = cal.load_golden(path)
    scenario = load_scenario(str(ROOT / g.data["file"]))
    assert path.name == f"{scenario.name}.{g.release}.json"
    assert re.fullmatch(r"\d{4}-\d\d(-\d\d)?", g.data["measured"])  # a month when transcribed
    assert g.data["qemu_accel"] in ("kvm", "tcg", "kvm,tcg")
    assert g.runs
    for run in g.runs:
        result = run["result"]
        assert result["model"] == f"real:{g.release}"
        assert result["scenario"] == scenario.name
        assert result["status"] in STATUSES
        assert run["real"]["accel"] in ("kvm", "tcg")
        assert run["real"]["complete"] is True
        assert {o["step"] for o in result["observations"]} <= {s.index for s in scenario.steps}


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_golden_file_agrees_with_its_reference_model(path):
    """Each golden file against the model of the kernel it was measured on (v6.1 for the
    stock Debian kernel, v6.1+ksm-rmap-walk-address-range for the back-ported range patch)."""
    g = cal.load_golden(path)
    rows = cal.compare_with_golden(ROOT / g.data["file"], g.data["reference_model"],
                                   golden_dir=GOLDEN_DIR)
    rows = [r for r in rows if r.kernel == f"real:{g.release}"]
    assert rows
    # "n/a": a counter the kernel does not have (6.1 has no smaps KSM: line); the model
    # must still have observed it
    bad = [(r.observation, r.model, r.kernel_text) for r in rows
           if r.agree not in ("yes", "partly", "n/a") or r.model is None]
    assert not bad


# -- agreement rows -------------------------------------------------------------------------------

def test_a_compared_counter_agrees_when_both_sides_answer_the_comparison_alike(scenario_from):
    # swap_ents: ">= 1" claims only that something was swapped: the real process also has its
    # own bss and stack to swap, so exact counts differ while the claim holds on both sides
    scn = scenario_from("""\
        name: cmp
        steps:
          - expect: {pages_shared: 1, swap_ents: ">= 1"}
        """)
    kernel = [_real(scn, f"KSMREPRO step=0 op=expect time_ns=1 pages_shared=1 swap_ents={n}")
              for n in (131, 132, 0)]
    rows = {r.counter: r for r in cal.agreement_rows(scn, _model(scn, [
        (0, {"pages_shared": 1, "swap_ents": 129})]), kernel)}
    assert rows["swap_ents"].kernel_values == (131, 132, 0)
    assert rows["swap_ents"].agree == "partly"  # 0 does not hold; 131 and 132 do, as 129
    assert rows["pages_shared"].agree == "yes"
    rows = {r.counter: r for r in cal.agreement_rows(scn, _model(scn, [
        (0, {"pages_shared": 1, "swap_ents": 129})]), kernel[:2])}
    assert rows["swap_ents"].agree == "yes"


def test_agreement_rows(scenario_from):
    scn = scenario_from("""\
        name: agree
        steps:
          - expect: {pages_shared: 1, pages_sharing: 1}
          - print: [ksm_merging_pages, general_profit]
        """)
    kernel = [
        _real(scn, "KSMREPRO step=0 op=expect time_ns=1 pages_shared=1 pages_sharing=1",
              "KSMREPRO step=1 op=print time_ns=2 ksm_merging_pages=-1 general_profit=-1 "
              "missing=ksm_merging_pages"),
        _real(scn, "KSMREPRO step=0 op=expect time_ns=1 pages_shared=1 pages_sharing=0",
              "KSMREPRO step=1 op=print time_ns=2 ksm_merging_pages=-1 general_profit=-1 "
              "missing=ksm_merging_pages"),
    ]
    model = _model(scn, [(0, {"pages_shared": 1, "pages_sharing": 1}),
                         (1, {"ksm_merging_pages": 2, "general_profit": 5})])
    rows = cal.agreement_rows(scn, model, kernel)
    got = {r.counter: (r.model, r.kernel_values, r.agree) for r in rows}
    assert got == {
        "pages_shared": (1, (1, 1), "yes"),
        "pages_sharing": (1, (1, 0), "partly"),
        "ksm_merging_pages": (2, (None, None), "n/a"),  # 6.1 has no such counter
        "general_profit": (5, (-1, -1), "no"),  # a real -1: profit may be negative
    }
    assert rows[1].kernel_text == "1 ×1, 0 ×1"
    assert rows[0].observation == "agree step 0 pages_shared"
    assert {r.kernel for r in rows} == {"real:6.1.0-56-amd64"}
    assert {r.model_name for r in rows} == {"v6.1"}


def test_agreement_rows_compare_outcomes(scenario_from):
    scn = scenario_from("""\
        name: outcome
        steps:
          - prctl: {option: PR_SET_MEMORY_MERGE, value: 1}
        """)
    kernel = [_real(scn, "KSMREPRO step=0 errno=EINVAL")]
    model = _model(scn, [])
    rows = cal.agreement_rows(scn, model, kernel)
    assert [(r.op, r.model, r.kernel_values, r.agree) for r in rows] == [
        ("outcome", "ok", ("EINVAL at step 0",), "no")]


def test_save_and_compare_with_golden(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / "scenarios" / "calibration" / "golden").mkdir(parents=True)
    scn_path = root / "scenarios" / "calibration" / "merge.yaml"
    shutil.copy(MERGE, scn_path)
    scn = load_scenario(str(scn_path))
    boots = [_real(scn, "KSMREPRO step=5 op=expect time_ns=9 pages_shared=1 pages_sharing=9")
             for _ in range(2)]
    gdir = cal.golden_dir_for(scn_path)
    assert gdir == root / "scenarios" / "calibration" / "golden"
    path = cal.save_golden(scn, boots, gdir, reference_model="v6.1", kernel_source="test")
    assert path.name == "ksm-merge-identical.6.1.0-56-amd64.json"
    data = json.loads(path.read_text())
    assert data["file"] == "scenarios/calibration/merge.yaml"
    assert (data["reference_model"], data["qemu_accel"], len(data["runs"])) == ("v6.1", "tcg", 2)
    assert "console_log" not in data["runs"][0]["real"]
    assert data["runs"][0]["result"] == boots[0].to_json()
    assert cal.calibration_scenarios(gdir) == [scn_path]

    def fake_run(scenario, model, **kw):
        return _model(scenario, [(5, {"pages_shared": 1, "pages_sharing": 9})], model)

    monkeypatch.setattr("ksmrepro.runner.run_scenario", fake_run)
    rows = cal.compare_with_golden(scn_path)
    assert [(r.counter, r.model, r.kernel_text, r.agree, r.model_name) for r in rows] == [
        ("pages_shared", 1, "1", "yes", "v6.1"), ("pages_sharing", 9, "9", "yes", "v6.1")]

    result = CliRunner().invoke(calibrate_command, [str(scn_path), "--golden-dir", str(gdir)])
    assert result.exit_code == 0, result.output
    assert "model v6.1" in result.output
    assert "real:6.1.0-56-amd64" in result.output
    assert "2 agree, 0 disagree" in result.output

    monkeypatch.setattr("ksmrepro.runner.run_scenario", lambda s, m, **kw: _model(
        s, [(5, {"pages_shared": 0, "pages_sharing": 0})], m))
    result = CliRunner().invoke(calibrate_command, [str(scn_path), "--golden-dir", str(gdir),
                                                    "--json", "-"])
    assert result.exit_code == 1
    assert "0 agree, 2 disagree" in result.output
    assert '"agree": "no"' in result.output


def test_no_golden_file(tmp_path):
    from ksmrepro.errors import KsmreproError

    with pytest.raises(KsmreproError, match="no golden real-kernel file"):
        cal.compare_with_golden(MERGE, "v6.1", golden_dir=tmp_path)
    bad = tmp_path / "x.json"
    bad.write_text('{"version": 99}')
    with pytest.raises(KsmreproError, match="not a version 1 golden file"):
        cal.load_golden(bad)


def test_calibrate_save_needs_kernel():
    result = CliRunner().invoke(calibrate_command, ["--save"])
    assert result.exit_code == 2
    assert "--save needs --kernel" in result.output


# -- the export command --------------------------------------------------------------------------

def test_export_command(tmp_path):
    runner = CliRunner()
    result = runner.invoke(export_command, [str(ROOT / "scenarios" / "hugh.yaml")])
    assert result.exit_code == 0
    assert result.output.startswith("/*\n * ksm-mremap-swapout: generated by `ksmrepro export`")
    out = tmp_path / "t.c"
    result = runner.invoke(export_command, [str(MERGE), "--format", "kselftest", "-o", str(out)])
    assert result.exit_code == 0
    assert "TAP version 13" in out.read_text()
    result = runner.invoke(export_command, [str(MERGE), "--format", "rust"])
    assert result.exit_code == 2
