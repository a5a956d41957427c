"""ksmrepro.export.parse: a testcase's KSMREPRO lines -> a RunResult judged like a model's."""

from __future__ import annotations

from pathlib import Path

import pytest

from ksmrepro.export.parse import known_failure_for_kernel, parse_output
from ksmrepro.runner.results import STATUSES
from ksmrepro.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hugh():
    return load_scenario(str(ROOT / "scenarios" / "hugh.yaml"))


def _out(*lines: str, end: bool = True) -> str:
    body = ["[    0.000000] Linux version 6.1.0-56-amd64", "KSMREPRO-INIT run",
            "KSMREPRO begin steps=13 release=6.1.0-56-amd64", *lines]
    return "\r\n".join(body + (["KSMREPRO end"] if end else [])) + "\r\n"


def test_stock_61_output_fails_the_last_expect(hugh):
    res = parse_output(hugh, _out(
        "KSMREPRO step=10 op=expect time_ns=1033471200 pages_shared=1 pages_sharing=1",
        "KSMREPRO step=11 op=pressure time_ns=43267017630 exit=0",
        "KSMREPRO step=12 op=expect time_ns=43269994520 pages_shared=1 pages_sharing=1"))
    assert res.model == "real:6.1.0-56-amd64"
    assert res.release == "6.1.0-56-amd64"
    assert res.status == "failed"
    assert res.status in STATUSES
    first, last = res.observations
    assert (first.step, first.op, first.ok, first.values) == (
        10, "expect", True, {"pages_shared": 1, "pages_sharing": 1})
    assert first.expected == {"pages_shared": 1, "pages_sharing": 1}
    assert (last.ok, last.failed_keys) == (False, ("pages_shared", "pages_sharing"))
    assert last.time_ns == 43269994520
    assert res.final_time_ns == 43269994520
    assert res.pressure == {11: "exit=0"}
    assert res.error is None
    assert res.complete
    assert res.to_json()["observations"][1] == {
        "step": 12, "label": None, "op": "expect", "time_ns": 43269994520,
        "values": {"pages_shared": 1, "pages_sharing": 1},
        "expected": {"pages_shared": 0, "pages_sharing": 0}, "ok": False}


def test_passing_output_and_explicit_model_name(hugh):
    res = parse_output(hugh, _out(
        "KSMREPRO step=10 op=expect time_ns=1 pages_shared=1 pages_sharing=1",
        "KSMREPRO step=12 op=expect time_ns=2 pages_shared=0 pages_sharing=0"),
        model="real:custom")
    assert (res.model, res.status) == ("real:custom", "passed")


def test_kselftest_prefix_is_understood(hugh):
    text = "TAP version 13\n1..2\n# KSMREPRO begin steps=13 release=6.1.0\n" \
           "# KSMREPRO step=10 op=expect time_ns=1 pages_shared=1 pages_sharing=1\n" \
           "ok 1 step 10\n# KSMREPRO end\n"
    res = parse_output(hugh, text)
    assert res.model == "real:6.1.0"
    assert res.observations[0].ok


def test_missing_counter_fails_its_expectation(scenario_from):
    scn = scenario_from("""\
        name: m
        steps:
          - expect: {ksm_merging_pages: 0, pages_shared: 0}
          - print: [ksm_zero_pages]
        """)
    res = parse_output(scn, _out(
        "KSMREPRO step=0 op=expect time_ns=5 ksm_merging_pages=-1 pages_shared=0 "
        "missing=ksm_merging_pages",
        "KSMREPRO step=1 op=print time_ns=6 ksm_zero_pages=-1 missing=ksm_zero_pages"))
    expect, printed = res.observations
    assert expect.failed_keys == ("ksm_merging_pages",)
    assert expect.ok is False
    assert (printed.op, printed.ok, printed.expected) == ("print", None, None)
    assert res.missing == {0: ("ksm_merging_pages",), 1: ("ksm_zero_pages",)}


def test_errno_outcomes(scenario_from):
    scn = scenario_from("""\
        name: e
        steps:
          - mmap: {as: a, length: 2 pages}
          - {munmap: {addr: a + 1, length: 1 page}, errno: EINVAL}
          - cgroup: {name: g}
          - memory_reclaim: {cgroup: g, amount: 1M}
          - prctl: {option: PR_SET_MEMORY_MERGE, value: 1}
          - print: [pages_shared]
        """)
    res = parse_output(scn, _out("KSMREPRO step=1 errno=EINVAL",
                                 "KSMREPRO step=3 errno=EAGAIN",
                                 "KSMREPRO step=4 errno=EINVAL", end=False))
    assert res.status == "failed"
    assert (res.error.step, res.error.errno) == (4, "EINVAL")
    assert [(o.step, o.errno, o.expected) for o in res.step_outcomes] == [
        (1, "EINVAL", True), (3, "EAGAIN", False)]
    assert res.to_json()["error"] == {"step": 4, "errno": "EINVAL"}


def test_expected_errno_that_did_not_happen(scenario_from):
    scn = scenario_from("""\
        name: e
        steps:
          - mmap: {as: a, length: 2 pages}
          - {munmap: {addr: a, length: 1 page}, errno: EINVAL}
        """)
    res = parse_output(scn, _out("KSMREPRO step=1 errno=0 expected=EINVAL", end=False))
    assert res.status == "failed"
    assert "succeeded" in res.error.message


def test_signals(scenario_from):
    scn = scenario_from("""\
        name: s
        steps:
          - mmap: {as: a, length: 1 page}
          - {read: {addr: a, length: 1 page}, signal: SIGSEGV}
          - touch: {addr: a, length: 1 page}
        """)
    res = parse_output(scn, _out("KSMREPRO step=1 signal=none expected=SIGSEGV", end=False))
    assert res.status == "failed"
    assert "went through" in res.error.message
    res = parse_output(scn, _out("KSMREPRO step=1 signal=SIGSEGV",
                                 "KSMREPRO step=2 signal=SIGSEGV", end=False))
    assert [(o.step, o.signal) for o in res.step_outcomes] == [(1, "SIGSEGV")]
    assert (res.error.step, res.error.signal) == (2, "SIGSEGV")


def test_truncated_output_is_an_error(hugh):
    res = parse_output(hugh, _out(
        "KSMREPRO step=10 op=expect time_ns=1 pages_shared=1 pages_sharing=1", end=False))
    assert res.status == "error"
    assert not res.complete
    assert res.error.step == 11
    assert "stops after step 10" in res.error.message
    nothing = parse_output(hugh, "Kernel panic - not syncing\n")
    assert nothing.status == "error"
    assert "did not run" in nothing.error.message


def test_gave_up_and_dump_lines(scenario_from):
    scn = scenario_from("""\
        name: d
        steps:
          - dump: {what: [maps, ksm]}
          - ksm_wait: {full_scans: 1}
        """)
    res = parse_output(scn, _out(
        "KSMREPRO step=0 op=dump time_ns=1",
        "KSMREPRO-DUMP step=0 maps 7f0000000000-7f0000001000 rw-p 00000000 00:00 0",
        "KSMREPRO step=0 op=dump time_ns=2 pages_shared=0 full_scans=3",
        "KSMREPRO step=1 error=ksm_wait-timeout", end=False))
    assert res.dumps == [{"step": 0, "maps": ["7f0000000000-7f0000001000 rw-p 00000000 00:00 0"],
                          "ksm": {"pages_shared": 0, "full_scans": 3}}]
    assert res.status == "failed"
    assert "ksm_wait-timeout" in res.error.message


def test_page_dump_lines_become_rows(scenario_from):
    # What the exported dump() prints for Hugh's base after ksmd merged the moved copy:
    # base and base + 2 pages on the same KSM page frame, base + 1 page unmapped.
    scn = scenario_from("""\
        name: p
        steps:
          - dump: {what: pages}
        """)
    res = parse_output(scn, _out(
        "KSMREPRO step=0 op=dump time_ns=5",
        "KSMREPRO-DUMP step=0 pages addr=0x7f0000000000 pte=present pfn=0x3e47a count=2 "
        "flags=referenced,uptodate,lru,mmap,anon,swapbacked,ksm",
        "KSMREPRO-DUMP step=0 pages addr=0x7f0000002000 pte=present pfn=0x3e47a count=2 "
        "flags=referenced,uptodate,lru,mmap,anon,swapbacked,ksm",
        "KSMREPRO-DUMP step=0 pages addr=0x7f0000003000 pte=swap"))
    rows = res.dumps[0]["pages"]
    assert [r["addr"] for r in rows] == ["0x7f0000000000", "0x7f0000002000", "0x7f0000003000"]
    assert rows[0]["pfn"] == rows[1]["pfn"] == "0x3e47a" and rows[0]["count"] == 2
    assert rows[0]["ksm"] and "lru" in rows[0]["flags"].split(",")
    assert rows[2] == {"addr": "0x7f0000003000", "pte": "swap"}


def test_known_failures_for_real_kernels(scenario_from):
    scn = scenario_from("""\
        name: k
        known_failures:
          v6.1: "the model"
        steps:
          - expect: {pages_shared: 1}
        """)
    assert known_failure_for_kernel(scn, "real:6.1.0-56-amd64") is None
    object.__setattr__(scn, "known_failures", (("real:6.1.*", "stock 6.1 keeps it"),))
    assert known_failure_for_kernel(scn, "real:6.1.0-56-amd64") == "stock 6.1 keeps it"
    res = parse_output(scn, _out("KSMREPRO step=0 op=expect time_ns=1 pages_shared=0"))
    assert (res.status, res.known_failure_reason) == ("known-failure", "stock 6.1 keeps it")
    res = parse_output(scn, _out("KSMREPRO step=0 op=expect time_ns=1 pages_shared=1"))
    assert res.status == "unexpected-pass"
