"""``ksmrepro compare``: observations side by side, the first divergence, trace divergence."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from ksmrepro.analysis.compare import compare, compare_results, run_models
from ksmrepro.analysis.tracediff import first_divergence
from ksmrepro.cli import cli
from ksmrepro.runner.results import Observation, RunResult, StepFailure, TraceEvent
from tests.models.conftest import MINI_HUGH

GOOD, BAD = "v7.0-rc6+ksm-pte-mkold", "mm-2026-04+ksm-pte-mkold"


def ev(event: str, text: str, time_ns: int = 0, step: int = 1) -> TraceEvent:
    return TraceEvent(time_ns, step, event, text)


# --- trace divergence ----------------------------------------------------------------------


def test_identical_traces_ignore_time():
    a = [ev("ksm_do_scan", "full scan 1", 10), ev("try_to_unmap", "unmapped", 20)]
    b = [ev("ksm_do_scan", "full scan 1", 99), ev("try_to_unmap", "unmapped", 999)]
    assert first_divergence(["A", "B"], [a, b]) is None


def test_first_divergence_shows_each_side_and_own_lines():
    common = ev("ksm_merge_two_pages", "became KSM")
    walk_a = ev("rmap_walk_ksm", "walk\n  item x: pgoff range [0, ULONG_MAX]\n    visit vma v")
    walk_b = ev("rmap_walk_ksm", "walk\n  item x: pgoff range [0x5, 0x5]\n    MISSED vma v")
    td = first_divergence(["A", "B", "C"], [[common, walk_a, ev("e", "1")],
                                            [common, walk_b],
                                            [common, walk_a, ev("e", "2")]])
    assert td is not None
    assert td.index == 1
    assert td.common == common
    assert [s.models for s in td.sides] == [("A", "C"), ("B",)]
    assert td.sides[0].own_lines == (1, 2)  # line 0 "walk" is on both sides
    assert td.sides[1].own_lines == (1, 2)
    assert td.sides[1].remaining == 1
    assert td.sides[0].remaining == 2


def test_a_trace_that_ends_early():
    a = [ev("x", "1"), ev("y", "2")]
    td = first_divergence(["A", "B"], [a, a[:1]])
    assert td is not None
    assert td.index == 1
    assert td.sides[1].event is None
    assert td.sides[0].event == a[1]
    td = first_divergence(["A", "B"], [[ev("x", "1")], [ev("x", "2")]])
    assert td is not None
    assert td.index == 0
    assert td.common is None


# --- lining observations up ----------------------------------------------------------------


def obs(step: int, values: dict[str, int], expected: dict[str, int] | None = None
        ) -> Observation:
    failed = tuple(k for k, v in (expected or {}).items() if values.get(k) != v)
    return Observation(step, None, "expect" if expected is not None else "print", 0, values,
                       expected, None if expected is None else not failed,
                       failed_keys=failed)


def test_compare_results_rows_and_first_divergence():
    a = RunResult("s", "s.yaml", "A", "passed", [
        obs(2, {"pages_shared": 1}), obs(4, {"pages_shared": 0, "pages_sharing": 0},
                                         {"pages_shared": 0, "pages_sharing": 0})])
    b = RunResult("s", "s.yaml", "B", "failed", [
        obs(2, {"pages_shared": 1}), obs(4, {"pages_shared": 1, "pages_sharing": 0},
                                         {"pages_shared": 0, "pages_sharing": 0})])
    cmp = compare_results([a, b])
    assert cmp.models == ("A", "B")
    assert [(r.step, r.counter, r.expected, r.values, r.failed) for r in cmp.rows] == [
        (2, "pages_shared", "", ("1", "1"), (False, False)),
        (4, "pages_shared", "0", ("0", "1"), (False, True)),
        (4, "pages_sharing", "0", ("0", "0"), (False, False)),
    ]
    assert cmp.first_divergent_step == 4
    assert cmp.raw_ok == (True, False)
    assert not cmp.same


def test_a_failed_step_gets_a_result_row_and_later_steps_are_not_reached():
    a = RunResult("s", "s.yaml", "A", "passed", [obs(3, {"pages_shared": 0})])
    b = RunResult("s", "s.yaml", "B", "error", [],
                  error=StepFailure(1, errno="EINVAL", message="bad"))
    cmp = compare_results([a, b])
    assert [(r.step, r.counter, r.values) for r in cmp.rows] == [
        (1, "result", ("ok", "EINVAL")),
        (3, "pages_shared", ("0", "-")),
    ]
    assert cmp.first_divergent_step == 1


def test_same_runs_are_the_same():
    a = RunResult("s", "s.yaml", "A", "passed", [obs(1, {"pages_shared": 0})])
    b = RunResult("s", "s.yaml", "B", "passed", [obs(1, {"pages_shared": 0})])
    cmp = compare_results([a, b])
    assert cmp.same
    assert cmp.first_divergent_step is None


# --- on the simulated kernel ---------------------------------------------------------------


def test_hugh_mechanism_on_two_models(mini):
    cmp = compare(mini, [GOOD, BAD], trace=True, workers=1)
    assert cmp.first_divergent_step == 12
    rows = {r.counter: r.values for r in cmp.rows if r.step == 12}
    assert rows == {"pages_shared": ("0", "1"), "pages_sharing": ("0", "0")}
    td = cmp.trace
    assert td is not None
    assert [s.event.event for s in td.sides if s.event] == ["rmap_walk_ksm", "rmap_walk_ksm"]
    good, bad = td.sides
    assert good.models == (GOOD,)
    assert bad.models == (BAD,)
    bad_own = [bad.event.text.split("\n")[i] for i in bad.own_lines]
    assert any("MISSED vma" in line for line in bad_own)
    assert any("pgoff range [0x" in line for line in bad_own)
    good_own = [good.event.text.split("\n")[i] for i in good.own_lines]
    assert any("pgoff range [0, ULONG_MAX]" in line for line in good_own)


def test_parallel_runs_equal_serial_runs(mini):
    models = [GOOD, BAD, "mm-2026-08+ksm-pte-mkold"]
    serial = run_models(mini, models, trace=True, workers=1)
    parallel = run_models(mini, models, trace=True, workers=3)
    assert [r.model for r in parallel] == models
    assert [r.to_json() for r in parallel] == [r.to_json() for r in serial]
    assert [r.trace for r in parallel] == [r.trace for r in serial]


# --- the command ---------------------------------------------------------------------------


@pytest.fixture
def here(tmp_path, monkeypatch):
    shutil.copy(MINI_HUGH, tmp_path / "mini.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))


def test_compare_command_table_and_trace(here):
    res = invoke("compare", "mini.yaml", "-m", GOOD, "-m", BAD, "--trace", "-j", "1")
    assert res.exit_code == 1, res.output  # they differ
    out = res.stdout
    assert "v7.0-rc6" in out
    assert "mm-2026-04" in out
    assert "+ksm-pte-mkold" in out
    marked = [line for line in out.splitlines() if line.lstrip().startswith(">>")]
    assert len(marked) == 1
    assert "12" in marked[0]
    assert "swapped" in marked[0]
    assert marked[0].split()[-2:] == ["0", "1"]  # pages_shared: 0 vs 1
    assert "first divergence: step 12" in out
    assert "traces part at event" in out
    assert "rmap_walk_ksm" in out
    assert "MISSED vma" in out
    assert "pgoff range [0x" in out
    assert "known failure" not in out  # mini-hugh declares none: raw FAILED
    assert "FAILED" in out


def test_compare_same_models_exits_0(here):
    res = invoke("compare", "mini.yaml", "-m", GOOD, "-m", "mm-2026-08+ksm-pte-mkold",
                 "--trace")
    assert res.exit_code == 0, res.output
    assert "every observation is the same on every model" in res.stdout


def test_compare_needs_two_models_and_known_names(here):
    res = invoke("compare", "mini.yaml", "-m", GOOD)
    assert res.exit_code == 2
    assert "at least two models" in res.stderr
    res = invoke("compare", "mini.yaml", "-m", GOOD, "-m", "mm-2026-05")
    assert res.exit_code == 2
    assert "--model mm-2026-05: unknown model 'mm-2026-05'" in res.stderr
    assert "mm-2026-04" in res.stderr
    assert "v6.1" in res.stderr


def test_compare_a_user_model(here):
    (here / "models").mkdir()
    (here / "models" / "mine.yaml").write_text(
        "kind: models\nmodels:\n  fast-ksmd: {base: v7.0-rc6, knobs: {pages_to_scan: 1000}}\n")
    (here / "knobs.yaml").write_text("name: knobs\nsteps:\n  - print: [pages_to_scan]\n")
    res = invoke("compare", "knobs.yaml", "-m", "v7.0-rc6", "-m", "fast-ksmd")
    assert res.exit_code == 1, res.output
    assert "first divergence: step 0 (print) at knobs.yaml:3; pages_to_scan: 100 on " \
           "v7.0-rc6, 1000 on fast-ksmd" in res.stdout
