"""``ksmrepro phases`` and ``run --ksmd-phase``: ksmd's passes shifted against the steps."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from click.testing import CliRunner

from ksmrepro.analysis.phases import phase_ranges, sweep
from ksmrepro.cli import cli
from ksmrepro.mm.kernel import Kernel
from ksmrepro.models import resolve
from ksmrepro.runner import run_scenario
from ksmrepro.runner.run import ScenarioRun
from ksmrepro.scenario import load_scenario, load_scenario_text

HUGH = "scenarios/hugh.yaml"
MEMCG_RANGE = "scenarios/calibration/real-6.1/hugh-memcg-range.yaml"
# the same protocol after a warm-up that leaves no first-use costs in the race window
WARM = "tests/data/memcg-range-warm.yaml"
WARM_END = 23  # the last expect
RANGE = "v6.1+ksm-rmap-walk-address-range"

# ksmd wakes at the madvise (run is already 1); the prints read full_scans at known times
FIRST_PASS = """
name: first-pass
steps:
  - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
  - mmap: {as: a, length: 2 pages}
  - madvise: {addr: a, length: 2 pages, advice: MADV_MERGEABLE}
  - print: [full_scans]
  - sleep: 9ms
  - print: [full_scans]
  - sleep: 2ms
  - print: [full_scans]
"""


def _full_scans(text: str, phase: Fraction) -> list[int]:
    sr = ScenarioRun(load_scenario_text(text, "<test>"), resolve("v7.0-rc6"), ksmd_phase=phase)
    return [o.values["full_scans"] for o in sr.run().observations]


def test_phase_delays_ksmds_first_pass_by_that_fraction_of_a_cycle():
    # native costs: a cycle is sleep_millisecs (20 ms) + a batch (5 us); half of it is
    # 10.0025 ms, so the first full scan lands between the second and the third print
    assert _full_scans(FIRST_PASS, Fraction(0)) == [1, 1, 1]
    assert _full_scans(FIRST_PASS, Fraction(1, 2)) == [0, 0, 1]


def test_a_sleep_millisecs_write_still_wakes_ksmd_at_once():
    # ksm_iter_wait: the write interrupts the sleep (or the delayed start) and ksmd scans now
    text = FIRST_PASS.replace(
        "  - print: [full_scans]\n  - sleep: 9ms",
        "  - sysfs: {path: /sys/kernel/mm/ksm/sleep_millisecs, value: 20}\n"
        "  - print: [full_scans]\n  - sleep: 9ms", 1)
    assert _full_scans(text, Fraction(1, 2))[0] == 1


def test_phase_must_be_a_fraction_of_one_cycle():
    with pytest.raises(ValueError, match="not in"):
        Kernel(resolve("v7.0-rc6").switches, ksmd_phase=Fraction(1))


def test_phase_zero_is_the_plain_run():
    scn = load_scenario(HUGH)
    s = sweep(scn, "mm-2026-04+ksm-pte-mkold", 4, workers=1)
    plain = run_scenario(scn, "mm-2026-04+ksm-pte-mkold")
    assert s.results[0].to_json() == plain.to_json()
    assert "ksmd_phase" not in plain.to_json()
    assert s.results[1].to_json()["ksmd_phase"] == "1/4"


def test_hughs_testcase_does_not_race_ksmd():
    # the sleep(1) and 1G of pressure leave nothing to the alignment of ksmd's passes
    scn = load_scenario(HUGH)
    for model, last in (("v7.0-rc6+ksm-pte-mkold", "0"), ("mm-2026-04+ksm-pte-mkold", "1")):
        s = sweep(scn, model, 8, workers=1)
        assert not s.timing_dependent, model
        row = next(r for r in s.rows if r.step == 12 and r.counter == "pages_shared")
        assert s.distribution(row) == [(last, list(range(8)))]


def test_memcg_range_row_does_not_race_with_first_use_costs():
    # docs/timing.md: the first mremap and the first memory.reclaim write pay their
    # first-use costs (qemu-tcg), which make the window about as long as ksmd's cycle
    # (1 0 at 254 of 256 phases; at every one of 16)
    s = sweep(load_scenario(MEMCG_RANGE), RANGE, 16, workers=1)
    assert not s.outcome_dependent
    rows = {r.counter: r for r in s.rows if r.step == 17}
    assert s.distribution(rows["pages_shared"]) == [("1", list(range(16)))]
    assert s.distribution(rows["pages_sharing"]) == [("0", list(range(16)))]
    assert dict(s.status_distribution()) == {"passed": list(range(16))}


def test_warm_memcg_range_protocol_is_a_race_with_ksmd():
    # 1 0 when ksmd's pass merges the mremap-moved copy before reclaim's second look at
    # it, 0 0 otherwise; the winning phases are one window, shorter than a cycle
    s = sweep(load_scenario(WARM), RANGE, 16, workers=1)
    assert s.timing_dependent
    assert s.outcome_dependent
    rows = {r.counter: r for r in s.rows if r.step == WARM_END}
    dist = dict(s.distribution(rows["pages_shared"]))
    assert set(dist) == {"0", "1"}
    wins = dist["1"]
    assert 0 < len(wins) < 16
    assert wins == list(range(wins[0], wins[0] + len(wins)))
    assert s.distribution(rows["pages_sharing"]) == [("0", list(range(16)))]
    assert dict(s.distribution(rows["smaps_ksm"]))["4096"] == wins
    statuses = dict(s.status_distribution())
    assert statuses["passed"] == wins
    assert len(statuses["failed"]) == 16 - len(wins)


def test_printed_values_may_differ_while_the_outcome_does_not():
    # LTP ksm07 prints full_scans: one pass fewer when ksmd starts later; its ">= N"
    # expectations hold at every phase
    s = sweep(load_scenario("scenarios/ksm/ltp-ksm07.yaml"), "v7.0-rc6", 4, workers=1)
    assert s.timing_dependent
    assert not s.outcome_dependent
    end = next(r for r in s.rows if r.label == "end" and r.counter == "full_scans")
    assert [v for v, _ in s.distribution(end)] == ["102", "101"]


def test_phase_ranges():
    assert phase_ranges([3, 4, 5, 7], 16) == "3/16-5/16, 7/16"
    assert phase_ranges([0], 4) == "0/4"


def test_cli_phases_exit_status_and_json(tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["phases", HUGH, "-m", "v7.0-rc6+ksm-pte-mkold", "-n", "4", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert "the same at every phase" in r.output
    out = tmp_path / "p.json"
    r = runner.invoke(cli, ["phases", WARM, "-n", "8", "-j", "1", "--json", str(out)])
    assert r.exit_code == 1, r.output
    assert "timing-dependent" in r.output
    doc = json.loads(out.read_text())
    assert doc["phases"] == 8
    (sw,) = doc["sweeps"]
    assert (sw["scenario"], sw["file"]) == ("memcg-range-warm", WARM)
    assert (sw["model"], sw["phases"], sw["timing_dependent"]) == (RANGE, 8, True)
    shared = next(x for x in sw["rows"]
                  if x["step"] == WARM_END and x["counter"] == "pages_shared")
    assert {v["value"] for v in shared["values"]} == {"0", "1"}
    again = tmp_path / "q.json"
    runner.invoke(cli, ["phases", WARM, "-n", "8", "-j", "2", "--json", str(again)])
    assert again.read_bytes() == out.read_bytes()


def test_cli_phases_exit_zero_when_only_printed_values_differ():
    r = CliRunner().invoke(cli, ["phases", "scenarios/ksm/ltp-ksm07.yaml", "-m", "v7.0-rc6",
                                 "-n", "4", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert "the outcome is the same at every phase" in r.output


def test_cli_phases_over_a_directory_summarises_and_shows_the_race():
    r = CliRunner().invoke(cli, ["phases", "scenarios/calibration/real-6.1/", WARM, "-n", "4",
                                 "-k", "memcg", "-j", "1"])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if " on v6.1" in ln and ": " in ln]
    racy = [ln for ln in lines if "timing-dependent" in ln]
    assert len(racy) == 1
    assert "memcg-range-warm " in racy[0]
    assert RANGE in racy[0]
    assert any("hugh-memcg-no-mremap" in ln and "passed at every phase" in ln for ln in lines)
    assert any("real61-hugh-memcg-range " in ln and "passed at every phase" in ln
               for ln in lines)
    assert "ksmd at 4 phases" in r.output  # the racy sweep's table follows the summary
    r = CliRunner().invoke(cli, ["phases", "scenarios/calibration/real-6.1/", "-n", "4",
                                 "--tag", "real-kernel", "-k", "mglru", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert "ksmd at 4 phases" not in r.output  # no table when nothing races


def test_cli_phases_rejects_a_bad_count():
    r = CliRunner().invoke(cli, ["phases", HUGH, "-n", "0"])
    assert r.exit_code == 2


def test_cli_run_ksmd_phase(tmp_path):
    runner = CliRunner()
    out = tmp_path / "r.json"
    r = runner.invoke(cli, ["run", WARM, "--ksmd-phase", "5/16", "--json", str(out)])
    assert r.exit_code == 0, r.output  # passes at this phase, fails at phase 0
    assert "ksmd phase 5/16" in r.output
    (run,) = json.loads(out.read_text())["runs"]
    assert (run["ksmd_phase"], run["status"]) == ("5/16", "passed")
    assert runner.invoke(cli, ["run", WARM]).exit_code == 1
    for bad in ("1", "-1/4", "x", "1/0"):
        r = runner.invoke(cli, ["run", HUGH, "--ksmd-phase", bad])
        assert r.exit_code == 2, bad
