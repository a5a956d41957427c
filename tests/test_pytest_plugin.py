"""The pytest plugin (ksmrepro.pytest_plugin), driven through pytester.

As in test_cli.py, the scenarios never make KSM do anything, so their counters are
0 with the placeholder runner and with the simulated kernel.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "ksmrepro.pytest_plugin")

NO_KSM = """\
steps:
  - mmap: {as: buf, length: 4 pages}
  - memset: {addr: buf, value: 0x5a, length: 4 pages}
  - expect: {pages_shared: 0, pages_sharing: 0}
"""

FILES = {
    "ok.yaml": "name: no-ksm-activity\ntags: [smoke]\n" + NO_KSM,
    "fail.yaml": """\
name: expects-sharing
steps:
  - mmap: {as: buf, length: 4 pages}
  - memset: {addr: buf, value: 0x5a, length: 4 pages}
  - expect: {pages_shared: 5}
""",
    "known.yaml": """\
name: known-bad
known_failures:
  v7.0-rc6: nothing merges without MADV_MERGEABLE
steps:
  - mmap: {as: buf, length: 4 pages}
  - expect: {pages_shared: 5}
""",
    "xpass.yaml": """\
name: stale-known-failure
known_failures:
  v7.0-rc6: said to fail
steps:
  - mmap: {as: buf, length: 4 pages}
  - expect: {pages_shared: 0}
""",
    "multi.yaml": "# two models\nname: two-models\nmodels: [v7.0-rc6, v6.1]\n" + NO_KSM,
    # YAML that is not a scenario, and a model file: never collected
    "config.yaml": "title: some other tool's config\nitems: [1, 2]\n",
    "kind.yaml": "kind: models\nname: m\nsteps: []\n",
    "scenarios/models/model.yaml": "name: model-like\n" + NO_KSM,
}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    for name, text in FILES.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return pytester


def test_collects_one_item_per_scenario_and_model(project):
    res = project.runpytest(*PLUGIN, "--ksmrepro", "--collect-only", "-q")
    ids = [line for line in res.outlines if "::" in line]
    assert sorted(ids) == sorted([
        "fail.yaml::v7.0-rc6",
        "known.yaml::v7.0-rc6",
        "multi.yaml::v7.0-rc6",
        "multi.yaml::v6.1",
        "ok.yaml::v7.0-rc6",
        "xpass.yaml::v7.0-rc6",
    ])


def test_outcomes_known_failures_are_strict_xfail(project):
    res = project.runpytest(*PLUGIN, "--ksmrepro", "-rA")
    res.assert_outcomes(passed=3, failed=2, xfailed=1)
    res.stdout.fnmatch_lines([
        "*XFAIL known.yaml::v7.0-rc6*known failure: nothing merges without MADV_MERGEABLE*",
        "*FAILED xpass.yaml::v7.0-rc6*XPASS(strict)*known failure: said to fail*",
    ])


def test_failure_report_is_the_mismatch_block(project):
    res = project.runpytest(*PLUGIN, "--ksmrepro", "fail.yaml")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines([
        "expects-sharing [[]v7.0-rc6[]]: 1 of 1 expectations failed",
        "fail.yaml:5: step 2 (expect)",
        "    5 |   - expect: {pages_shared: 5}",
        "    counter       expected  seen",
        "    pages_shared  5         0     <- differs",
    ])
    text = res.stdout.str()
    assert "Traceback" not in text
    assert "ksmrepro/runner" not in text
    assert "def runtest" not in text


def test_not_collected_without_opt_in(project):
    res = project.runpytest(*PLUGIN)
    assert res.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_ini_option_opts_in(project):
    project.makeini("[pytest]\nksmrepro_scenarios = true\n")
    res = project.runpytest(*PLUGIN, "ok.yaml", "multi.yaml")
    res.assert_outcomes(passed=3)


def test_other_yaml_is_never_collected(project):
    res = project.runpytest(*PLUGIN, "--ksmrepro", "--collect-only", "-q")
    text = res.stdout.str()
    assert "multi.yaml" in text
    for name in ("config.yaml", "kind.yaml", "model.yaml"):
        assert name not in text
    # named explicitly, they are still not tests
    res = project.runpytest(*PLUGIN, "--ksmrepro", "config.yaml")
    res.stderr.fnmatch_lines(["ERROR: not found:*config.yaml*"])


def test_invalid_scenario_is_a_collection_error_without_traceback(project):
    project.path.joinpath("bad.yaml").write_text(
        "name: typo\nsteps:\n  - mmap: {as: a, length: 1 page}\n  - memsett: {addr: a}\n")
    res = project.runpytest(*PLUGIN, "--ksmrepro", "bad.yaml")
    assert res.ret == pytest.ExitCode.INTERRUPTED
    res.stdout.fnmatch_lines(["*error: bad.yaml:4:*memsett*"])
    assert "Traceback" not in res.stdout.str()


def test_model_option_and_keyword_selection(project):
    res = project.runpytest(*PLUGIN, "--ksmrepro", "--ksmrepro-model", "v6.1",
                            "--collect-only", "-q", "ok.yaml", "multi.yaml")
    assert sorted(line for line in res.outlines if "::" in line) == [
        "multi.yaml::v6.1", "ok.yaml::v6.1"]
    res = project.runpytest(*PLUGIN, "--ksmrepro", "-k", "smoke")
    res.assert_outcomes(passed=1)


def test_unknown_model_is_a_collection_error(project):
    res = project.runpytest(*PLUGIN, "--ksmrepro", "--ksmrepro-model", "v9.9", "ok.yaml")
    res.stdout.fnmatch_lines(["*error: --model v9.9: unknown model*v7.0-rc6*"])


def test_reportinfo(project):
    items, _ = project.inline_genitems(*PLUGIN, "--ksmrepro", "multi.yaml")
    item = items[1]
    path, line, desc = item.reportinfo()
    assert path == project.path / "multi.yaml"
    assert line == 1  # 0-based: `name:` is on line 2
    assert desc == "scenario: two-models[v6.1]"
    assert item.location[2] == "scenario: two-models[v6.1]"


RACY = """\
name: racy-merge
steps:
  - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
  - mmap: {as: a, length: 2 pages}
  - memset: {addr: a, value: 0x5a, length: 2 pages}
  - madvise: {addr: a, length: 2 pages, advice: MADV_MERGEABLE}
  - sleep: 30ms
  - expect: {pages_shared: 1, pages_sharing: 1}
"""


def test_phases_option_fails_a_test_that_races_ksmd(project):
    # ksmd's second pass merges the pair 20 ms after the first: within the 30 ms at phase
    # 0 (the plain run passes), after them once its passes fall half a cycle later
    project.path.joinpath("racy.yaml").write_text(RACY)
    res = project.runpytest(*PLUGIN, "--ksmrepro", "racy.yaml", "ok.yaml")
    res.assert_outcomes(passed=2)
    res = project.runpytest(*PLUGIN, "--ksmrepro", "--ksmrepro-phases", "4", "racy.yaml",
                            "ok.yaml")
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines([
        "*racy-merge*on v7.0-rc6, ksmd at 4 phases*",
        "*pages_sharing*1 at 0/4-1/4 (2 of 4); 0 at 2/4-3/4 (2 of 4)*",
        "*timing-dependent: the outcome depends on where ksmd's passes fall*",
    ])
    assert "Traceback" not in res.stdout.str()


def test_phases_option_must_be_a_count(project):
    res = project.runpytest(*PLUGIN, "--ksmrepro", "--ksmrepro-phases", "0", "ok.yaml")
    assert res.ret == pytest.ExitCode.USAGE_ERROR

