"""``ksmrepro`` command line: exit codes, outputs, errors (click's CliRunner).

The scenarios here never make KSM do anything (mmap + memset, no MADV_MERGEABLE,
ksmd not started), so every counter they read is 0 on any model: these tests hold
with the placeholder runner and with the simulated kernel alike.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import ksmrepro
from ksmrepro.cli import cli, main
from ksmrepro.errors import KernelBug
from ksmrepro.runner.results import RunResult, StepFailure

NO_KSM_STEPS = """\
steps:
  - mmap: {as: buf, length: 4 pages}
  - memset: {addr: buf, value: 0x5a, length: 4 pages}
  - print: [pages_shared]
  - expect: {pages_shared: 0, pages_sharing: 0}
"""

SCENARIOS = {
    "ok.yaml": "name: no-ksm-activity\ntags: [smoke]\n" + NO_KSM_STEPS,
    "fail.yaml": """\
name: expects-sharing
tags: [broken]
steps:
  - mmap: {as: buf, length: 4 pages}
  - memset: {addr: buf, value: 0x5a, length: 4 pages}
  - expect: {pages_shared: 5}
""",
    "known.yaml": """\
name: known-bad
known_failures:
  v7.0-rc6: "nothing merges without MADV_MERGEABLE"
steps:
  - mmap: {as: buf, length: 4 pages}
  - memset: {addr: buf, value: 0x5a, length: 4 pages}
  - expect: {pages_shared: 5}
""",
    "xpass.yaml": """\
name: stale-known-failure
known_failures:
  v7.0-rc6: "said to fail, but it does not"
steps:
  - mmap: {as: buf, length: 4 pages}
  - memset: {addr: buf, value: 0x5a, length: 4 pages}
  - expect: {pages_shared: 0}
""",
    "multi.yaml": "name: two-models\nmodels: [v7.0-rc6, v6.1]\n" + NO_KSM_STEPS,
}

BAD = """\
name: typo
steps:
  - mmap: {as: buf, length: 4 pages}
  - memsett: {addr: buf, value: 0x5a, length: 4 pages}
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def runner() -> CliRunner:
    # Wide enough that rich never wraps a line these tests look for.
    return CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def scen(tmp_path, monkeypatch) -> Path:
    """A directory of scenarios; the current directory, so paths in reports are short."""
    for name, text in SCENARIOS.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KSMREPRO_DEBUG", raising=False)
    return tmp_path


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


# --- exit codes -------------------------------------------------------------------------------


def test_passing_scenario_exits_0(runner, scen):
    res = run(runner, "run", "ok.yaml")
    assert res.exit_code == 0, res.output
    assert "no-ksm-activity" in res.stdout
    assert "ok.yaml" in res.stdout
    assert "1 run: 1 passed" in res.stdout
    assert res.stderr == ""


def test_failed_expectation_exits_1(runner, scen):
    res = run(runner, "run", "fail.yaml")
    assert res.exit_code == 1
    assert "FAIL" in res.stdout
    assert "1 of 1 expectations failed" in res.stdout


def test_known_failure_exits_0_and_shows_reason(runner, scen):
    res = run(runner, "run", "known.yaml")
    assert res.exit_code == 0, res.output
    assert "known failure" in res.stdout
    assert "nothing merges without MADV_MERGEABLE" in res.stdout


def test_unexpected_pass_exits_1(runner, scen):
    res = run(runner, "run", "xpass.yaml")
    assert res.exit_code == 1
    assert "UNEXPECTED PASS" in res.stdout
    assert "said to fail, but it does not" in res.stdout


def test_one_failure_among_passes_exits_1(runner, scen):
    assert run(runner, "run", "ok.yaml", "known.yaml").exit_code == 0
    assert run(runner, "run", "ok.yaml", "fail.yaml", "known.yaml").exit_code == 1


def test_failed_step_exits_1_and_names_step_and_errno(runner, scen, monkeypatch):
    def fake_run(scenario, model, trace=False, **_kw):
        failure = StepFailure(1, errno="EFAULT", message="buf is not mapped", line=4)
        return RunResult(scenario.name, scenario.path, str(model), "failed", error=failure)

    monkeypatch.setattr("ksmrepro.runner.run_scenario", fake_run)
    res = run(runner, "run", "ok.yaml", "--json", "out.json")
    assert res.exit_code == 1
    assert "step 1 (memset): EFAULT — buf is not mapped" in res.stdout
    doc = json.loads(Path("out.json").read_text())
    assert doc["runs"][0]["error"]["step"] == 1
    assert doc["runs"][0]["error"]["errno"] == "EFAULT"


# --- invalid input: exit 2, "error: path:line:col: message", never a traceback -------------------


def test_invalid_scenario_exits_2_with_location(runner, scen):
    Path("bad.yaml").write_text(BAD)
    res = run(runner, "run", "bad.yaml")
    assert res.exit_code == 2
    line = line_of(BAD, "memsett")
    assert re.search(rf"^error: bad\.yaml:{line}:\d+: .*memsett", res.stderr, re.M), res.stderr
    assert "Traceback" not in res.output
    assert res.stdout == ""


def test_invalid_yaml_exits_2_with_location(runner, scen):
    Path("broken.yaml").write_text("name: x\nsteps:\n  - mmap: {as: a, length: 1 page\n")
    res = run(runner, "run", "broken.yaml")
    assert res.exit_code == 2
    assert re.search(r"^error: broken\.yaml:\d+:\d+: ", res.stderr, re.M), res.stderr
    assert "Traceback" not in res.output


def test_every_invalid_file_is_reported(runner, scen):
    Path("bad.yaml").write_text(BAD)
    Path("bad2.yaml").write_text(BAD.replace("typo", "typo2"))
    res = run(runner, "run", "ok.yaml", "bad.yaml", "bad2.yaml")
    assert res.exit_code == 2
    assert "bad.yaml:" in res.stderr
    assert "bad2.yaml:" in res.stderr
    assert "no-ksm-activity" not in res.stdout  # nothing ran


def test_unknown_model_exits_2_listing_known_names(runner, scen):
    res = run(runner, "run", "ok.yaml", "--model", "v7.0-rc9")
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ")
    assert "v7.0-rc9" in res.stderr
    for known in ("v7.0-rc6", "v6.1", "mm-2026-04"):
        assert known in res.stderr
    assert "Traceback" not in res.output


def test_unknown_model_in_scenario_exits_2(runner, scen):
    Path("m.yaml").write_text("name: m\nmodels: [v9.9]\n" + NO_KSM_STEPS)
    res = run(runner, "run", "m.yaml")
    assert res.exit_code == 2
    assert "v9.9" in res.stderr
    assert "v7.0-rc6" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nosuch.yaml"], "nosuch.yaml: no such file or directory"),
        (["run", "nosuch/*.yaml"], "matches no scenario file"),
        (["run", "ok.yaml", "-k", "zzz"], "no scenario matches -k 'zzz'"),
        (["run", "ok.yaml", "--dump-after", "99"], "--dump-after 99"),
        (["run", "ok.yaml", "--json", "-", "--tap", "-"], "only one of --json, --tap"),
    ],
)
def test_bad_command_line_exits_2(runner, scen, args, message):
    res = run(runner, *args)
    assert res.exit_code == 2
    assert message in res.stderr
    assert "Traceback" not in res.output


def test_bad_option_value_exits_2(runner, scen):
    assert run(runner, "run", "ok.yaml", "-j", "-1").exit_code == 2
    assert run(runner, "run").exit_code == 2


# --- bugs: exit 3 -------------------------------------------------------------------------------


def test_kernel_bug_exits_3_with_invariant_and_step(runner, scen, monkeypatch):
    def fake_run(scenario, model, trace=False, **_kw):
        bug = KernelBug("VM_BUG_ON(rmap_hlist_len != pages_shared + pages_sharing)")
        bug.step = 1  # type: ignore[attr-defined]
        raise bug

    monkeypatch.setattr("ksmrepro.runner.run_scenario", fake_run)
    res = run(runner, "run", "ok.yaml", "--json", "out.json", "--junit", "out.xml")
    assert res.exit_code == 3
    assert "VM_BUG_ON(rmap_hlist_len != pages_shared + pages_sharing)" in res.stderr
    line = line_of(SCENARIOS["ok.yaml"], "memset:")
    assert f"ok.yaml:{line}: step 1 (memset)" in res.stderr
    assert "Traceback" not in res.output
    run0 = json.loads(Path("out.json").read_text())["runs"][0]
    assert run0["status"] == "error"
    assert "VM_BUG_ON" in run0["kernel_bug"]
    assert ET.parse("out.xml").getroot().get("errors") == "1"


def test_unexpected_exception_gets_traceback_without_locals(runner, scen, monkeypatch):
    def fake_run(scenario, model, trace=False, **_kw):
        secret_local = "visible only with " + "KSMREPRO_DEBUG"  # noqa: F841
        raise RuntimeError("simulator exploded")

    monkeypatch.setattr("ksmrepro.runner.run_scenario", fake_run)
    res = run(runner, "run", "ok.yaml")
    assert res.exit_code == 3
    assert "RuntimeError" in res.stderr
    assert "simulator exploded" in res.stderr
    assert "internal error" in res.stderr
    assert "visible only with KSMREPRO_DEBUG" not in res.stderr

    monkeypatch.setenv("KSMREPRO_DEBUG", "1")
    res = run(runner, "run", "ok.yaml")
    assert res.exit_code == 3
    assert "visible only with KSMREPRO_DEBUG" in res.stderr


# --- JSON -------------------------------------------------------------------------------------


CONTRACT_RUN_KEYS = {"scenario", "file", "model", "status", "observations", "error"}
CONTRACT_OBS_KEYS = {"step", "label", "op", "time_ns", "values", "expected", "ok"}


def test_json_matches_the_contract(runner, scen):
    res = run(runner, "run", "ok.yaml", "fail.yaml", "known.yaml", "xpass.yaml",
              "--json", "out.json")
    assert res.exit_code == 1
    doc = json.loads(Path("out.json").read_text())
    assert doc["version"] == 1
    assert set(doc) <= {"version", "runs", "environment"}
    assert doc["environment"]["ksmrepro"] == ksmrepro.__version__
    statuses = [r["status"] for r in doc["runs"]]
    assert statuses == ["passed", "failed", "known-failure", "unexpected-pass"]
    for r in doc["runs"]:
        assert set(r) >= CONTRACT_RUN_KEYS
        assert set(r) - CONTRACT_RUN_KEYS <= {"model_detail"}
        assert r["model"] == "v7.0-rc6"
        assert r["model_detail"]["base"] == "v7.0-rc6"
        assert r["error"] is None
        for obs in r["observations"]:
            assert set(obs) == CONTRACT_OBS_KEYS
    ok = doc["runs"][0]
    assert ok["scenario"] == "no-ksm-activity"
    assert ok["file"] == "ok.yaml"
    printed, expected = ok["observations"]
    assert printed == {**printed, "step": 2, "op": "print", "expected": None, "ok": None}
    assert printed["values"] == {"pages_shared": 0}
    assert expected["step"] == 3
    assert expected["expected"] == {"pages_shared": 0, "pages_sharing": 0}
    assert expected["values"] == {"pages_shared": 0, "pages_sharing": 0}
    assert expected["ok"] is True
    assert doc["runs"][1]["observations"][0]["ok"] is False


def test_json_to_stdout_moves_console_report_to_stderr(runner, scen):
    res = run(runner, "run", "ok.yaml", "--json", "-")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["runs"][0]["status"] == "passed"
    assert "1 run: 1 passed" in res.stderr


def test_json_has_trace_only_with_trace(runner, scen):
    plain = json.loads(run(runner, "run", "ok.yaml", "--json", "-").stdout)
    assert "trace" not in plain["runs"][0]
    traced = json.loads(run(runner, "run", "ok.yaml", "--json", "-", "--trace").stdout)
    assert isinstance(traced["runs"][0]["trace"], list)


def test_json_is_deterministic(runner, scen):
    a = run(runner, "run", ".", "--json", "-").stdout
    b = run(runner, "run", ".", "--json", "-").stdout
    assert a == b


# --- -j N -------------------------------------------------------------------------------------


def test_parallel_run_is_identical_to_serial(runner, scen):
    serial = run(runner, "run", ".", "--json", "s.json", "--junit", "s.xml", "--tap", "s.tap")
    parallel = run(runner, "run", ".", "-j", "2", "--json", "p.json", "--junit", "p.xml",
                   "--tap", "p.tap")
    assert serial.exit_code == parallel.exit_code == 1
    for ext in ("json", "xml", "tap"):
        assert Path(f"s.{ext}").read_bytes() == Path(f"p.{ext}").read_bytes(), ext
    assert serial.stdout == parallel.stdout


# --- JUnit ------------------------------------------------------------------------------------


def test_junit_report(runner, scen):
    res = run(runner, "run", ".", "--junit", "out/junit.xml")
    assert res.exit_code == 1
    root = ET.parse("out/junit.xml").getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert sorted(suites) == sorted(SCENARIOS)
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) \
        == ("6", "2", "0", "1")
    for suite in suites.values():
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert props["ksmrepro.version"] == ksmrepro.__version__
    multi = [c.get("name") for c in suites["multi.yaml"].findall("testcase")]
    assert multi == ["two-models[v7.0-rc6]", "two-models[v6.1]"]
    assert suites["multi.yaml"].find("testcase").get("classname") == "ksmrepro.two-models"

    fail = suites["fail.yaml"].find("testcase")
    failure = fail.find("failure")
    assert failure is not None
    line = line_of(SCENARIOS["fail.yaml"], "expect:")
    assert f"fail.yaml:{line}: step 2 (expect)" in failure.text
    assert "<- differs" in failure.text
    case_props = {p.get("name"): p.get("value") for p in fail.find("properties")}
    assert case_props["model.base"] == "v7.0-rc6"
    assert case_props["model.patches"] == ""

    known = suites["known.yaml"].find("testcase")
    assert known.find("skipped").get("message") == \
        "known failure: nothing merges without MADV_MERGEABLE"
    assert known.find("failure") is None
    assert suites["xpass.yaml"].find("testcase/failure").get("type") == "unexpected-pass"
    assert suites["ok.yaml"].find("testcase/failure") is None


# --- TAP --------------------------------------------------------------------------------------


def test_tap_report(runner, scen):
    res = run(runner, "run", "ok.yaml", "known.yaml", "fail.yaml", "xpass.yaml", "--tap", "-")
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert lines[:2] == ["TAP version 13", "1..4"]
    results = [ln for ln in lines if re.match(r"(not )?ok \d", ln)]
    assert results == [
        "ok 1 ok.yaml::v7.0-rc6",
        "not ok 2 known.yaml::v7.0-rc6 # TODO known failure: nothing merges without "
        "MADV_MERGEABLE",
        "not ok 3 fail.yaml::v7.0-rc6",
        "not ok 4 xpass.yaml::v7.0-rc6",
    ]
    assert lines[-1] == "# Totals: pass:1 fail:1 xfail:1 xpass:1 skip:0 error:0"
    assert all(ln.startswith(("TAP version", "1..", "ok ", "not ok ", "#")) for ln in lines)
    line = line_of(SCENARIOS["fail.yaml"], "expect:")
    assert f"# fail.yaml:{line}: step 2 (expect)" in lines


# --- console report ---------------------------------------------------------------------------


def test_console_summary_table_for_several_models(runner, scen):
    res = run(runner, "run", "multi.yaml")
    assert res.exit_code == 0
    assert res.stdout.count("two-models  multi.yaml  on ") == 2
    assert "summary" in res.stdout
    assert "2 runs: 2 passed" in res.stdout


def test_console_is_plain_when_not_a_tty(runner, scen):
    res = run(runner, "run", "fail.yaml")
    assert "\x1b[" not in res.output


def test_trace_prints_trace_section(runner, scen):
    res = run(runner, "run", "ok.yaml", "--trace")
    assert res.exit_code == 0
    assert "trace (" in res.stdout


# --- collecting files -------------------------------------------------------------------------


def test_directory_search_finds_only_scenarios(runner, scen):
    (scen / "sub").mkdir()
    (scen / "sub" / "deep.yml").write_text("name: deep\n" + NO_KSM_STEPS)
    (scen / "notes.yaml").write_text("title: not a scenario\nitems: [1, 2]\n")
    (scen / "list.yaml").write_text("- steps\n- more\n")
    (scen / "modelfile.yaml").write_text("kind: models\nname: m\nsteps: []\n")
    models_dir = scen / "scenarios" / "models"
    models_dir.mkdir(parents=True)
    (models_dir / "mine.yaml").write_text("name: model-like\n" + NO_KSM_STEPS)
    (scen / "scenarios" / "real.yaml").write_text("name: real-one\n" + NO_KSM_STEPS)
    res = run(runner, "run", ".", "--json", "-")
    files = [r["file"] for r in json.loads(res.stdout)["runs"]]
    assert sorted(set(files)) == sorted(
        ["fail.yaml", "known.yaml", "multi.yaml", "ok.yaml", "xpass.yaml",
         "scenarios/real.yaml", "sub/deep.yml"])


def test_glob_and_duplicates(runner, scen):
    res = run(runner, "run", "ok.yaml", "*.yaml", "--json", "-")
    files = [r["file"] for r in json.loads(res.stdout)["runs"]]
    assert files[0] == "ok.yaml"
    assert files.count("ok.yaml") == 1
    assert "fail.yaml" in files


def test_select_by_keyword_and_tag(runner, scen):
    doc = json.loads(run(runner, "run", ".", "-k", "stale", "--json", "-").stdout)
    assert [r["scenario"] for r in doc["runs"]] == ["stale-known-failure"]
    doc = json.loads(run(runner, "run", ".", "--tag", "smoke", "--json", "-").stdout)
    assert [r["scenario"] for r in doc["runs"]] == ["no-ksm-activity"]
    res = run(runner, "run", ".", "--tag", "smoke", "--tag", "broken", "--json", "-")
    assert [r["scenario"] for r in json.loads(res.stdout)["runs"]] == [
        "expects-sharing", "no-ksm-activity"]


def test_model_option_overrides_scenario_models(runner, scen):
    res = run(runner, "run", "multi.yaml", "-m", "v6.1", "-m", "mm-2026-04", "--json", "-")
    assert [r["model"] for r in json.loads(res.stdout)["runs"]] == ["v6.1", "mm-2026-04"]


def test_dump_after_keeps_step_numbers(runner, scen):
    res = run(runner, "run", "ok.yaml", "--dump-after", "1", "--json", "-")
    assert res.exit_code == 0
    steps = [o["step"] for o in json.loads(res.stdout)["runs"][0]["observations"]]
    assert steps == [2, 3]


# --- validate, schema, entry point -------------------------------------------------------------


def test_validate(runner, scen):
    res = run(runner, "validate", "ok.yaml", "multi.yaml")
    assert res.exit_code == 0
    assert "ok  ok.yaml" in res.stdout
    Path("bad.yaml").write_text(BAD)
    res = run(runner, "validate", "ok.yaml", "bad.yaml")
    assert res.exit_code == 2
    assert re.search(rf"error: bad\.yaml:{line_of(BAD, 'memsett')}:", res.stderr)
    assert "Traceback" not in res.output


def test_validate_checks_model_names(runner, scen):
    Path("m.yaml").write_text("name: m\nknown_failures: {v9.9: why}\n" + NO_KSM_STEPS)
    res = run(runner, "validate", "m.yaml")
    assert res.exit_code == 2
    assert "known_failures" in res.stderr
    assert "v9.9" in res.stderr


def test_schema_prints_json(runner):
    res = run(runner, "schema")
    assert res.exit_code == 0
    schema = json.loads(res.stdout)
    assert schema["type"] == "object"
    assert "steps" in schema["properties"]


def test_commands_are_listed(runner):
    res = run(runner, "--help")
    assert res.exit_code == 0
    for name in ("run", "validate", "schema"):
        assert re.search(rf"^\s+{name}\s", res.stdout, re.M)


def test_main_entry_point(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert ksmrepro.__version__ in capsys.readouterr().out
