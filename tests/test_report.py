"""Reports rendered from RunResults built in code (no runner involved).

Rendered text is compared with golden files in tests/report/golden/ (a fixed-width,
no-colour Console).  After an intended change to a report, regenerate them with
``KSMREPRO_UPDATE_GOLDEN=1 pytest tests/test_report.py`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from ksmrepro.report import RunRecord
from ksmrepro.report.console import make_console, print_report
ROOT = Path(__file__).resolve().parent.parent
from ksmrepro.report.json import json_document, json_text
from ksmrepro.report.junit import junit_text
from ksmrepro.report.tap import tap_text
from ksmrepro.report.text import failure_text, mismatch_block, run_ids, step_title, summary_line
from ksmrepro.runner.results import Observation, RunResult, StepFailure, TraceEvent
from ksmrepro.scenario.steps import (
    AddrExpr,
    Comparison,
    Expect,
    Memset,
    Mmap,
    Mremap,
    Print,
    Scenario,
)

GOLDEN = Path(__file__).parent / "report" / "golden"

DEMO_YAML = """\
name: demo
steps:
  - mmap: {as: base, length: 3 pages}
  - memset: {addr: base, value: 0x77, length: 2 pages}
  - print: [pages_shared, pages_sharing]
  - mremap: {old_addr: base + 1 page, old_size: 1 page, new_size: 1 page,
             flags: [MREMAP_MAYMOVE, MREMAP_FIXED], new_addr: base + 2 pages}
  - expect: {pages_shared: 1, pages_sharing: ">= 1"}
"""

BASE = AddrExpr("base")
SCENARIO = Scenario(
    name="demo",
    path="demo.yaml",
    steps=(
        Mmap(index=0, line=3, as_="base", length=3 * 4096),
        Memset(index=1, line=4, addr=BASE, value=0x77, length=2 * 4096),
        Print(index=2, line=5, counters=("pages_shared", "pages_sharing")),
        Mremap(index=3, line=6, old_addr=AddrExpr("base", 4096), old_size=4096, new_size=4096,
               flags=("MREMAP_MAYMOVE", "MREMAP_FIXED"), new_addr=AddrExpr("base", 8192)),
        Expect(index=4, line=8, values=(("pages_shared", Comparison("==", 1)),
                                        ("pages_sharing", Comparison(">=", 1)))),
    ),
)
REASON = "the v3 range patch misses the\nmremap-moved vma # of course"


def _print(seen: int = 1) -> Observation:
    return Observation(2, None, "print", 1_000_000_000,
                       {"pages_shared": seen, "pages_sharing": seen}, line=5)


def _expect(shared: int, sharing: int) -> Observation:
    bad = tuple(k for k, ok in (("pages_shared", shared == 1), ("pages_sharing", sharing >= 1))
                if not ok)
    return Observation(4, None, "expect", 1_020_000_000,
                       {"pages_shared": shared, "pages_sharing": sharing},
                       {"pages_shared": 1, "pages_sharing": ">= 1"}, not bad, line=8,
                       failed_keys=bad)


def result(model: str, status: str, *obs: Observation, **kw) -> RunResult:
    return RunResult("demo", "demo.yaml", model, status, list(obs), **kw)


def records() -> list[RunRecord]:
    bug = StepFailure(3, message="VM_BUG_ON_FOLIO(!folio_test_anon(folio))", line=6)
    return [
        RunRecord(result("v7.0-rc6", "passed", _print(), _expect(1, 1)), SCENARIO),
        RunRecord(result("v6.1", "failed", _print(), _expect(0, 1)), SCENARIO),
        RunRecord(result("mm-2026-04", "known-failure", _print(), _expect(1, 0),
                         known_failure_reason=REASON), SCENARIO),
        RunRecord(result("mm-2026-08", "unexpected-pass", _print(), _expect(1, 1),
                         known_failure_reason=REASON), SCENARIO),
        RunRecord(result("v7.0-rc6+ksm-pte-mkold", "failed", _print(),
                         error=StepFailure(3, errno="EINVAL", message="new_addr overlaps",
                                           line=6)), SCENARIO),
        RunRecord(result("v6.1+ksm-pte-mkold", "error", error=bug), SCENARIO,
                  kernel_bug="VM_BUG_ON_FOLIO(!folio_test_anon(folio))"),
    ]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    # demo.yaml in the current directory, so mismatch blocks can quote its lines.
    (tmp_path / "demo.yaml").write_text(DEMO_YAML)
    monkeypatch.chdir(tmp_path)


def fixed_console(width: int = 100) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False,
                      legacy_windows=False, highlight=False, emoji=False)
    return console, out


def check_golden(name: str, text: str) -> None:
    text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    path = GOLDEN / name
    if os.environ.get("KSMREPRO_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"differs from {path} (KSMREPRO_UPDATE_GOLDEN=1 rewrites it)"


# --- text ---------------------------------------------------------------------------------------


def test_step_titles():
    assert step_title(6, "mremap") == "step 6 (mremap)"
    assert step_title(6, "mremap", "moved") == 'step 6 "moved" (mremap)'
    assert step_title(6) == "step 6"
    assert failure_text(StepFailure(6, errno="EINVAL", message="bad"), "mremap") == \
        "step 6 (mremap): EINVAL — bad"
    assert failure_text(StepFailure(9, signal="SIGSEGV"), "memset") == "step 9 (memset): SIGSEGV"


def test_mismatch_block_shows_expected_seen_and_the_line():
    block = mismatch_block(records()[1].result, SCENARIO)
    assert block.splitlines() == [
        "demo [v6.1]: 1 of 1 expectations failed",
        "demo.yaml:8: step 4 (expect)",
        '    8 |   - expect: {pages_shared: 1, pages_sharing: ">= 1"}',
        "    counter        expected  seen",
        "    pages_shared   1         0     <- differs",
        "    pages_sharing  >= 1      1",
    ]


def test_mismatch_block_without_scenario_or_file(tmp_path):
    res = records()[1].result
    res.file = str(tmp_path / "gone.yaml")
    block = mismatch_block(res)
    assert f"{res.file}:8: step 4 (expect)" in block
    assert " | " not in block


def test_mismatch_block_reads_the_file_as_it_is_now():
    before = mismatch_block(records()[1].result, SCENARIO)
    Path("demo.yaml").write_text(DEMO_YAML.replace('">= 1"', '">= 2"'))
    after = mismatch_block(records()[1].result, SCENARIO)
    assert '">= 1"' in before
    assert '">= 2"' in after


def test_mismatch_blocks_golden():
    text = "\n\n".join(mismatch_block(r.result, r.scenario, r.kernel_bug) for r in records())
    check_golden("mismatch.txt", text)


def test_summary_line():
    assert summary_line(records()) == (
        "6 runs: 1 passed, 2 FAILED, 1 known failure, 1 UNEXPECTED PASS, 1 kernel bug")
    assert summary_line([]) == "0 runs: nothing ran"


def test_run_ids_use_base_names_unless_ambiguous():
    a = RunResult("a", "x/one.yaml", "v6.1", "passed")
    b = RunResult("b", "y/one.yaml", "v6.1", "passed")
    c = RunResult("c", "y/two.yaml", "v6.1", "passed")
    assert run_ids([a, c]) == ["one.yaml::v6.1", "two.yaml::v6.1"]
    assert run_ids([a, b, c]) == ["x/one.yaml::v6.1", "y/one.yaml::v6.1", "two.yaml::v6.1"]


# --- console ------------------------------------------------------------------------------------


def test_console_report_golden():
    console, out = fixed_console()
    print_report(console, records())
    check_golden("console.txt", out.getvalue())


def test_console_report_narrow_summary_is_one_row_per_run():
    console, out = fixed_console(width=60)
    print_report(console, records())
    text = out.getvalue()
    summary = text[text.index("summary"):]
    assert "model" in summary.splitlines()[1]
    assert "mm-2026-04" in summary


def test_console_report_has_no_escape_codes_when_not_a_terminal():
    console, out = fixed_console()
    print_report(console, records())
    assert "\x1b" not in out.getvalue()


def test_no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert make_console().no_color


def test_console_trace_and_dumps_golden():
    res = result("v7.0-rc6", "passed", _print(), _expect(1, 1))
    res.trace = [
        TraceEvent(1_000_250_000, 1, "ksm_merge_one_page", "ksm_merge_one_page: pfn=0x1a2b"),
        TraceEvent(2_500_000_000, 4, "rmap_walk_ksm", "rmap_walk_ksm: folio=0x1a2b pgoff 0..-1"),
    ]
    res.dumps = [{
        "step": 3, "proc": "main",
        "maps": [{"start": "0x7f0000000000", "end": "0x7f0000001000", "pgoff": 0x7f0000000,
                  "flags": "rw-p"},
                 {"start": "0x7f0000002000", "end": "0x7f0000003000", "flags": "rw-p",
                  "anon_vma": True}],
        "pages": [],
        "ksm": {"pages_shared": 1, "stable": {"nodes": 1, "chains": 0}, "unstable": [3, 4]},
    }]
    console, out = fixed_console()
    print_report(console, [RunRecord(res, SCENARIO)], trace=True)
    text = out.getvalue()
    assert "1000.250" in text
    assert "rmap_walk_ksm" in text
    check_golden("console-trace-dump.txt", text)


def test_console_expected_step_outcome_row():
    res = result("v7.0-rc6", "passed", _expect(1, 1),
                 step_outcomes=[StepFailure(3, errno="EINVAL", expected=True, line=6)])
    console, out = fixed_console()
    print_report(console, [RunRecord(res, SCENARIO)])
    row = next(line for line in out.getvalue().splitlines() if "EINVAL" in line)
    assert "mremap" in row
    assert "EINVAL (asked for)" in row
    assert "ok" in row


def test_console_shows_failed_step_and_known_failure_reason():
    console, out = fixed_console(width=200)
    print_report(console, records())
    text = out.getvalue()
    assert "FAILED: step 3 (mremap): EINVAL — new_addr overlaps" in text
    assert "known failure: the v3 range patch misses the mremap-moved vma # of course" in text
    assert "KERNEL BUG: step 3 (mremap): VM_BUG_ON_FOLIO(!folio_test_anon(folio))" in text


# --- JSON ---------------------------------------------------------------------------------------


def test_json_document_keeps_contract_keys():
    doc = json_document(records())
    assert doc["version"] == 1
    assert [r["status"] for r in doc["runs"]] == [
        "passed", "failed", "known-failure", "unexpected-pass", "failed", "error"]
    for run, rec in zip(doc["runs"], records(), strict=False):
        contract = rec.result.to_json()
        assert {k: run[k] for k in contract} == contract
    assert doc["runs"][0]["model_detail"]["base"] == "v7.0-rc6"
    assert doc["runs"][4]["model_detail"]["patches"] == ["ksm-pte-mkold"]
    switches = doc["runs"][0]["model_detail"]["switches"]
    assert list(switches) == sorted(switches)
    assert doc["runs"][5]["kernel_bug"].startswith("VM_BUG_ON_FOLIO")
    assert "kernel_bug" not in doc["runs"][0]
    assert "trace" not in doc["runs"][0]
    assert "dumps" not in doc["runs"][0]


def test_json_text_is_stable():
    assert json_text(records()) == json_text(records())
    assert json.loads(json_text(records(), trace=True))["runs"][0]["trace"] == []


# --- JUnit --------------------------------------------------------------------------------------


def test_junit():
    root = ET.fromstring(junit_text(records()))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "demo.yaml"
    counts = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "6", "failures": "3", "errors": "1", "skipped": "1"}
    assert {k: root.get(k) for k in counts} == counts
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases][:2] == ["demo[v7.0-rc6]", "demo[v6.1]"]
    assert all(c.get("classname") == "ksmrepro.demo" for c in cases)
    assert list(cases[0]) == [cases[0].find("properties"), cases[0].find("system-out")]
    assert cases[1].find("failure").text == mismatch_block(records()[1].result, SCENARIO)
    assert cases[2].find("skipped").get("message") == (
        "known failure: the v3 range patch misses the mremap-moved vma # of course")
    assert cases[3].find("failure").get("type") == "unexpected-pass"
    assert "step 3 (mremap): EINVAL" in cases[4].find("failure").text
    assert cases[5].find("error").get("type") == "KernelBug"
    props = {p.get("name"): p.get("value") for p in cases[4].find("properties")}
    assert props == {"model": "v7.0-rc6+ksm-pte-mkold", "model.base": "v7.0-rc6",
                     "model.patches": "ksm-pte-mkold"}


# --- TAP ----------------------------------------------------------------------------------------


def test_tap_golden():
    text = tap_text(records())
    lines = text.splitlines()
    assert lines[0] == "TAP version 13"
    assert lines[1] == "1..6"
    assert lines[-1] == "# Totals: pass:1 fail:2 xfail:1 xpass:1 skip:0 error:1"
    todo = next(line for line in lines if "# TODO" in line)
    assert todo == ("not ok 3 demo.yaml::mm-2026-04 # TODO known failure: "
                    "the v3 range patch misses the mremap-moved vma  of course")
    check_golden("tap.txt", text)


def test_kernel_dump_renders_maps_with_pgoff_and_the_moved_folio_index():
    """Issue 2's must-show: a dump after Hugh's mremap shows [base, base+P) pgoff b and
    [base+2P, base+3P) pgoff b+1, and the moved folio's index b+1."""
    from ksmrepro.report.text import dump_lines
    from ksmrepro.runner import run_scenario
    from ksmrepro.scenario import load_scenario
    from ksmrepro.scenario.steps import Dump

    sc = load_scenario(ROOT / "scenarios" / "hugh.yaml")
    steps = list(sc.steps[:7]) + [Dump(index=7, line=0)]
    sc = dataclasses.replace(sc, steps=tuple(steps))
    res = run_scenario(sc, "v7.0-rc6+ksm-pte-mkold")
    text = "\n".join(dump_lines(res.dumps[0]))
    base = int(res.dumps[0]["maps"][0]["vm_start"], 16)
    b = base >> 12
    assert f"{base:x}-{base + 4096:x} pgoff {b:#x}" in text
    assert f"{base + 8192:x}-{base + 12288:x} pgoff {b + 1:#x}" in text
    assert f"{base + 8192:#x}: present y   pfn" in text
    assert f"index {b + 1:#x} (linear_page_index {b + 1:#x}) mapping anon_vma#1" in text
