"""``ksmrepro bisect`` and ``ksmrepro run`` as a ``git bisect run`` predicate.

Most tests use tests/models/data/mini-hugh.yaml, Hugh's testcase on a 128M machine: on the
series ksm-rmap-walk with ``--with ksm-pte-mkold`` its outcome is pass, pass, FAIL, FAIL,
pass (the address-range patch breaks it, the page-index patch fixes it again).  One test runs
the must-show on scenarios/hugh.yaml itself.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ksmrepro import collect
from ksmrepro.analysis.bisect import bisect, range_walk, series_walk
from ksmrepro.analysis.outcome import cannot_run
from ksmrepro.cli import cli
from ksmrepro.errors import ModelError
from ksmrepro.models import registry
from ksmrepro.runner.results import RunResult, StepFailure
from tests.models.conftest import MINI_HUGH

ROOT = Path(__file__).parents[1]
ADDRESS_RANGE_TITLE = "ksm: Optimize rmap_walk_ksm by passing a suitable address range"

PRCTL = """\
name: merge-any
steps:
  - prctl: {option: PR_SET_MEMORY_MERGE, value: 1}
  - mmap: {as: a, length: 2 pages}
  - memset: {addr: a, value: 1, length: 2 pages}
  - expect: {pages_shared: 0}
"""

FLIPS = """\
kind: models
patches:
  rmap-full-range:
    title: 'Revert "ksm: Optimize rmap_walk_ksm by passing a suitable address range"'
    function: rmap_walk_ksm
    sets: {ksm_rmap_range: full}
  rmap-address-again:
    title: 'Reapply "ksm: Optimize rmap_walk_ksm by passing a suitable address range"'
    function: rmap_walk_ksm
    sets: {ksm_rmap_range: address}
  prctl-merge-any:
    title: 'prctl: PR_SET_MEMORY_MERGE (backport)'
    function: prctl
    sets: {ksm_prctl_merge_any: true}
series:
  flip-thrice:
    base: v7.0-rc6
    patches: [ksm-rmap-walk-address-range, rmap-full-range, rmap-address-again]
  backport:
    base: v6.1
    patches: [ksm-pte-mkold, prctl-merge-any]
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    shutil.copy(MINI_HUGH, tmp_path / "mini.yaml")
    (tmp_path / "prctl.yaml").write_text(PRCTL)
    (tmp_path / "flips.yaml").write_text(FLIPS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KSMREPRO_DEBUG", raising=False)
    return tmp_path


def invoke(*args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))


def values(b):
    return [o.value for o in b.outcomes]


# --- the must-show -------------------------------------------------------------------------


def test_hugh_bisect_names_the_address_range_patch(monkeypatch):
    monkeypatch.chdir(ROOT)
    res = invoke("bisect", "scenarios/hugh.yaml", "--series", "ksm-rmap-walk",
                 "--with", "ksm-pte-mkold")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "first bad patch: ksm-rmap-walk-address-range (point 2; pass -> FAIL)" in out
    assert ADDRESS_RANGE_TITLE in out
    assert "xu xin, [PATCH v3 2/2]" in out
    assert "mremap" in out
    assert "step 12 (expect), before and after:" in out
    before_after = [line.split() for line in out.splitlines()
                    if line.split()[:1] == ["pages_shared"]]
    assert before_after[0] == ["pages_shared", "0", "0", "1"]
    assert "the outcome changes again: ksm-rmap-walk-page-index (point 4; FAIL -> pass)" in out


# --- flips ---------------------------------------------------------------------------------


def test_no_flip_without_pte_mkold(mini):
    b = bisect(mini, series_walk("ksm-rmap-walk"), workers=1)
    assert values(b) == ["fail"] * 5
    assert b.changes == ()
    assert b.first is None
    assert b.binary_first is None


def test_no_flip_command_says_so(here):
    res = invoke("bisect", "mini.yaml", "--series", "ksm-rmap-walk")
    assert res.exit_code == 0, res.output
    assert "no point of series ksm-rmap-walk changes the outcome: every point that ran " \
           "gives FAIL" in res.stdout


def test_flips_twice_reports_the_first_and_says_it_flips_again(mini):
    b = bisect(mini, series_walk("ksm-rmap-walk", ["ksm-pte-mkold"]), workers=1)
    assert values(b) == ["pass", "pass", "fail", "fail", "pass"]
    assert [(c.before, c.after) for c in b.changes] == [(1, 2), (3, 4)]
    assert b.first.after == 2
    assert b.binary_first is None  # the ends agree: only checking every point finds it
    # point 1 changes only a switch no run reads: not run, provably the same as point 0
    assert b.outcomes[1].same_as == 0
    assert b.outcomes[1].unread == ("ksm_rmap_addr_once",)
    assert b.runs == 4


def test_single_flip_found_by_the_binary_search(mini, monkeypatch):
    monkeypatch.setitem(registry.SERIES, "late-range", registry.Series(
        "late-range", "v7.0-rc6", ("ksm-rmap-walk-addr-once", "ksm-rmap-item-linear-page-index",
                                   "ksm-rmap-walk-address-range")))
    b = bisect(mini, series_walk("late-range", ["ksm-pte-mkold"]), workers=1)
    assert values(b) == ["pass", "pass", "pass", "fail"]
    assert b.binary_first == 3
    assert b.first.after == 3
    assert len(b.changes) == 1
    assert b.probes  # the ends differ: the binary search looked in between


def test_flips_thrice_binary_search_would_miss_the_first(here):
    res = invoke("bisect", "mini.yaml", "--models-file", "flips.yaml", "--series",
                 "flip-thrice", "--with", "ksm-pte-mkold", "-j", "1")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "first bad patch: ksm-rmap-walk-address-range (point 1; pass -> FAIL)" in out
    assert "the outcome changes again: rmap-full-range (point 2; FAIL -> pass)" in out
    assert "the outcome changes again: rmap-address-again (point 3; pass -> FAIL)" in out
    registry.reset_user_models()
    from ksmrepro.models.userfile import load_model_file

    load_model_file("flips.yaml")
    b = bisect(collect.load("mini.yaml"), series_walk("flip-thrice", ["ksm-pte-mkold"]),
               workers=1)
    assert b.binary_first == 3
    assert b.first.after == 1


def test_parallel_bisect_equals_serial(mini):
    walk = series_walk("ksm-rmap-walk", ["ksm-pte-mkold"])
    serial, parallel = bisect(mini, walk, workers=1), bisect(mini, walk, workers=2)
    assert values(parallel) == values(serial)
    assert parallel.changes == serial.changes
    assert [o.result.to_json() for o in parallel.outcomes] == \
        [o.result.to_json() for o in serial.outcomes]


# --- --observe -----------------------------------------------------------------------------


def test_observe_a_step(mini):
    b = bisect(mini, series_walk("ksm-rmap-walk", ["ksm-pte-mkold"]), observe=12, workers=1)
    assert [dict(v)["pages_shared"] for v in values(b)] == [0, 0, 1, 1, 0]
    assert [(c.before, c.after) for c in b.changes] == [(1, 2), (3, 4)]
    b = bisect(mini, series_walk("ksm-rmap-walk", ["ksm-pte-mkold"]), observe=10, workers=1)
    assert b.changes == ()


def test_observe_command(here):
    res = invoke("bisect", "mini.yaml", "--series", "ksm-rmap-walk", "--with", "ksm-pte-mkold",
                 "--observe", "swapped")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert 'outcome: the values step 12 "swapped" (expect) reads' in out
    assert 'first patch that changes step 12 "swapped" (expect): ksm-rmap-walk-address-range ' \
           "(point 2; pages_shared=0 pages_sharing=0 -> pages_shared=1 pages_sharing=0)" in out


@pytest.mark.parametrize(("spec", "message"), [
    ("11", "--observe 11: step 11 is a pressure step; it observes nothing (observing steps: "
           "10 'merged' (expect), 12 'swapped' (expect))"),
    ("nope", "--observe nope: mini.yaml has no step 'nope'"),
])
def test_observe_errors(here, spec, message):
    res = invoke("bisect", "mini.yaml", "--series", "ksm-rmap-walk", "--observe", spec)
    assert res.exit_code == 2
    assert message in res.stderr


# --- --good/--bad and errors ---------------------------------------------------------------


def test_good_bad_range(here):
    res = invoke("bisect", "mini.yaml", "--good", "v7.0-rc6+ksm-pte-mkold",
                 "--bad", "mm-2026-04+ksm-pte-mkold")
    assert res.exit_code == 0, res.output
    assert "bisect v7.0-rc6+ksm-pte-mkold .. mm-2026-04+ksm-pte-mkold: 1 patches" in res.stdout
    assert "first bad patch: ksm-rmap-walk-address-range (point 1; pass -> FAIL)" in res.stdout


def test_range_walk_points():
    walk = range_walk("v7.0-rc6", "mm-2026-08+ksm-pte-mkold", ["ksm-rmap-walk-addr-once"])
    assert [p.patch.name if p.patch else None for p in walk.points] == [
        None, "ksm-rmap-item-linear-page-index", "ksm-rmap-walk-page-index", "ksm-pte-mkold"]
    assert all(p.model.patches[-1].name == "ksm-rmap-walk-addr-once" for p in walk.points)


@pytest.mark.parametrize(("args", "message"), [
    (["--series", "ksm-rmap"], "unknown series 'ksm-rmap'; did you mean 'ksm-rmap-walk'? "
                               "(known seriess: ksm-rmap-walk)"),
    (["--series", "ksm-rmap-walk", "--with", "ksm-pte-mkolt"],
     "unknown patch 'ksm-pte-mkolt'; did you mean 'ksm-pte-mkold'?"),
    (["--series", "ksm-rmap-walk", "--with", "ksm-rmap-walk-address-range"],
     "--with ksm-rmap-walk-address-range: already applied by series ksm-rmap-walk"),
    (["--good", "mm-2026-04", "--bad", "v7.0-rc6"],
     "--good mm-2026-04 and --bad v7.0-rc6 are not on one series: v7.0-rc6 lacks "
     "ksm-rmap-walk-address-range"),
    (["--good", "v6.1", "--bad", "mm-2026-04"], "their bases are v6.1 and v7.0-rc6"),
    (["--good", "v7.0-rc6", "--bad", "mm-2026-4"], "--bad mm-2026-4: unknown model"),
    (["--good", "v7.0-rc6"], "give --series NAME, or --good MODEL and --bad MODEL"),
    ([], "give --series NAME, or --good MODEL and --bad MODEL"),
])
def test_bisect_errors_exit_2(here, args, message):
    res = invoke("bisect", "mini.yaml", *args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr


def test_series_walk_rejects_unresolvable_points(monkeypatch):
    monkeypatch.setitem(registry.SERIES, "x", registry.Series("x", "v7.0-rc6",
                                                              ("ksm-pte-mkold",)))
    with pytest.raises(ModelError, match="series x, point 0: .* needs "
                                         "ksm-rmap-item-linear-page-index first"):
        series_walk("x", ["ksm-rmap-walk-page-index"])


# --- cannot run: skip ----------------------------------------------------------------------


def test_cannot_run_reasons():
    def res(err):
        return RunResult("s", "s.yaml", "m", "error", error=err)

    assert cannot_run(res(StepFailure(3, errno="ENOSYS", message="cgroup: not here"))) == \
        "step 3: ENOSYS — cgroup: not here"
    assert cannot_run(res(StepFailure(1, errno="EINVAL", message="X is not known to this "
                                                                 "kernel (v6.4+)")))
    assert cannot_run(res(StepFailure(1, errno="EINVAL", message="misaligned"))) is None
    assert cannot_run(res(StepFailure(1, signal="SIGSEGV"))) is None
    assert cannot_run(res(StepFailure(1, errno="ENOSYS", expected=True))) is None
    assert cannot_run(RunResult("s", "s.yaml", "m", "failed")) is None


def test_bisect_skips_points_that_cannot_run(here):
    res = invoke("bisect", "prctl.yaml", "--models-file", "flips.yaml", "--series", "backport")
    assert res.exit_code == 1, res.output  # only one point could run
    assert "cannot run: step 0 (prctl): EINVAL" in res.stdout
    assert "fewer than two points could run" in res.stdout
    registry.reset_user_models()
    res = invoke("bisect", "prctl.yaml", "--models-file", "flips.yaml", "--good", "v6.1",
                 "--bad", "v6.1+prctl-merge-any+ksm-pte-mkold")
    assert res.exit_code == 0, res.output
    assert "skip" in res.stdout
    assert "no point of v6.1 .. v6.1+prctl-merge-any+ksm-pte-mkold changes the outcome" \
        in res.stdout


# --- ksmrepro run as a git bisect run predicate --------------------------------------------


@pytest.mark.parametrize(("model", "status"), [
    ("v7.0-rc6+ksm-pte-mkold", 0),
    ("mm-2026-04+ksm-pte-mkold", 1),
    ("mm-2026-08+ksm-pte-mkold", 0),
])
def test_run_predicate_good_bad(here, model, status):
    assert invoke("run", "--model", model, "mini.yaml").exit_code == status


def test_run_predicate_known_failures_and_raw(here):
    text = (here / "mini.yaml").read_text().replace(
        "steps:", "known_failures:\n  mm-2026-04+ksm-pte-mkold: the v3 range patch\nsteps:")
    (here / "known.yaml").write_text(text)
    assert invoke("run", "-m", "mm-2026-04+ksm-pte-mkold", "known.yaml").exit_code == 0
    res = invoke("run", "-m", "mm-2026-04+ksm-pte-mkold", "--no-known-failures", "known.yaml")
    assert res.exit_code == 1


def test_run_predicate_125_when_the_model_lacks_a_step(here):
    res = invoke("run", "--model", "v6.1", "prctl.yaml")
    assert res.exit_code == 125, res.output
    assert "skip: prctl.yaml cannot run on v6.1: step 0 (prctl): EINVAL" in res.stderr
    assert invoke("run", "--model", "v7.0-rc6", "prctl.yaml").exit_code == 0
    asked = PRCTL.replace("  - prctl: {option: PR_SET_MEMORY_MERGE, value: 1}",
                          "  - {prctl: {option: PR_SET_MEMORY_MERGE, value: 1}, errno: EINVAL}")
    (here / "asked.yaml").write_text(asked)
    assert invoke("run", "--model", "v6.1", "asked.yaml").exit_code == 0


def test_run_predicate_a_real_failure_wins_over_skip(here):
    res = invoke("run", "-m", "v6.1", "prctl.yaml", "mini.yaml")
    assert res.exit_code == 1  # mini-hugh fails on stock v6.1: not a skip


def test_run_predicate_125_for_enosys(here, monkeypatch):
    def fake_run(scenario, model, *, trace=False, **_kw):
        return RunResult(scenario.name, scenario.path, model, "error",
                         error=StepFailure(1, errno="ENOSYS", message="not modelled"))

    monkeypatch.setattr("ksmrepro.runner.run_scenario", fake_run)
    assert invoke("run", "-m", "v7.0-rc6", "prctl.yaml").exit_code == 125
