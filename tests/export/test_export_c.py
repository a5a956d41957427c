"""ksmrepro.export.c: the C testcase compiles warning-free, reads like Hugh's, escapes everything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ksmrepro.export.c import (
    ExportError,
    c_comment,
    c_identifier,
    c_size,
    c_string,
    export_c,
    wrap_c,
)
from ksmrepro.export.parse import parse_output
from ksmrepro.scenario.loader import load_scenario
from ksmrepro.scenario.steps import (
    AddrExpr,
    Comparison,
    Exit,
    Expect,
    Fork,
    Madvise,
    Memset,
    Mmap,
    Print,
    Scenario,
    Touch,
)

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
# every shipped scenario (scenarios/models/ holds model files, not scenarios)
SCENARIOS = [p for p in sorted((ROOT / "scenarios").rglob("*.yaml"))
             if "models" not in p.relative_to(ROOT / "scenarios").parts]
ALL_STEPS = ROOT / "tests" / "scenario" / "data" / "all_steps.yaml"

# A scenario that runs safely on the test machine itself: no sysfs writes.
MULTI_PROCESS = """\
name: forks
machine: {swap: 0}
steps:
  - mmap: {as: a, length: 4 pages}
  - memset: {addr: a, value: 1, length: 4 pages}
  - fork: {child: kid}
  - {touch: {addr: a, length: 4 pages}, proc: kid}
  - {print: [rss_anon], proc: kid}
  - print: [rss_anon]
  - {exit: , proc: kid}
  - spawn: {name: fresh}
  - {mmap: {as: b, length: 1 page}, proc: fresh}
  - {touch: {addr: b, length: 1 page}, proc: fresh}
  - {print: [rss_anon], proc: fresh}
  - munmap: {addr: a, length: 4 pages}
  - {read: {addr: a, length: 1 page}, signal: SIGSEGV}
  - {munmap: {addr: a + 1, length: 1 page}, errno: EINVAL}
  - expect: {pages_shared: ">= 0"}
"""


# -- compiling -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["c", "kselftest"])
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_export_compiles_warning_free(path, fmt, compile_c):
    compile_c(export_c(load_scenario(str(path)), fmt), name=f"{path.stem}-{fmt}")


@pytest.mark.parametrize("fmt", ["c", "kselftest"])
def test_export_of_every_step_compiles(fmt, compile_c):
    compile_c(export_c(load_scenario(str(ALL_STEPS)), fmt), name=f"all-{fmt}")


def test_export_compiles_static(compile_c):
    hugh = load_scenario(str(ROOT / "scenarios" / "hugh.yaml"))
    compile_c(export_c(hugh), name="hugh-static", static=True)


def test_export_hugh_golden():
    """tests/export/golden/hugh.c; KSMREPRO_UPDATE_GOLDEN=1 rewrites it."""
    source = export_c(load_scenario(str(ROOT / "scenarios" / "hugh.yaml")))
    golden = GOLDEN / "hugh.c"
    if os.environ.get("KSMREPRO_UPDATE_GOLDEN"):
        golden.write_text(source)
    assert source == golden.read_text()


def test_export_reads_like_hughs_testcase():
    source = export_c(load_scenario(str(ROOT / "scenarios" / "hugh.yaml")))
    assert "base = mmap(NULL, 3 * PAGE_SIZE, PROT_READ | PROT_WRITE," in source
    assert "check(madvise(base, 3 * PAGE_SIZE, MADV_MERGEABLE) < 0, 0);" in source
    assert "memset(base2, 0x77, 512 * KB);" in source
    assert "MREMAP_MAYMOVE | MREMAP_FIXED, base + 2 * PAGE_SIZE)" in source
    assert 'report("expect", "pages_shared", "pages_sharing", NULL);' in source
    assert "pressure(1 * GB, 2, -1);" in source
    # the scenario's own text as the step's comment, continuation line and all
    assert " *   mremap: {old_addr: base + 1 page, old_size: 1 page, new_size: 1 page," in source
    assert "flags: [MREMAP_MAYMOVE, MREMAP_FIXED], new_addr: base + 2 pages}" in source
    # single process: no baton machinery
    assert "my_turn" not in source
    assert "int main(int argc" in source


def test_kselftest_format_prints_ktap():
    source = export_c(load_scenario(str(ROOT / "scenarios" / "hugh.yaml")), "kselftest")
    assert 'printf("TAP version 13\\n1..2\\n");' in source
    assert "ktap_result(!any_missing && seen[0] == 1LL && seen[1] == 1LL, 1," in source
    assert '#define LINE_PREFIX "# "' in source
    assert "return 4;\t/* KSFT_SKIP */" in source


# -- running (on this machine: only scenarios that write no sysfs knob) --------------------------

def test_multi_process_export_runs_in_order(scenario_from, compile_c):
    scenario = scenario_from(MULTI_PROCESS)
    binary = compile_c(export_c(scenario), name="forks")
    out = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    steps = [line.split()[1] for line in out.stdout.splitlines() if " step=" in line]
    assert steps == ["step=4", "step=5", "step=10", "step=12", "step=13", "step=14"]
    res = parse_output(scenario, out.stdout)
    assert res.complete, res
    assert res.status == "passed", res
    assert [(o.step, o.op) for o in res.observations] == [
        (4, "print"), (5, "print"), (10, "print"), (14, "expect")]
    assert [(f.step, f.signal, f.errno) for f in res.step_outcomes] == [
        (12, "SIGSEGV", None), (13, None, "EINVAL")]
    # the child copied a's 4 pages (touch), the spawned process has a fresh address space
    assert res.observations[0].values["rss_anon"] >= 4
    assert res.observations[2].values["rss_anon"] < res.observations[0].values["rss_anon"]


def test_unexpected_fault_is_reported_and_ends_the_test(scenario_from, compile_c):
    scenario = scenario_from("""\
        name: fault
        steps:
          - mmap: {as: a, length: 1 page}
          - munmap: {addr: a, length: 1 page}
          - touch: {addr: a, length: 1 page}
          - print: [pages_shared]
        """)
    binary = compile_c(export_c(scenario), name="fault")
    out = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    res = parse_output(scenario, out.stdout)
    assert res.status == "failed"
    assert (res.error.step, res.error.signal) == (2, "SIGSEGV")
    assert res.observations == []


def test_unexpected_errno_is_reported_and_ends_the_test(scenario_from, compile_c):
    scenario = scenario_from("""\
        name: errno
        steps:
          - mmap: {as: a, length: 2 pages}
          - mremap: {old_addr: a + 1, old_size: 1 page, new_size: 1 page, flags: [MREMAP_MAYMOVE]}
          - print: [pages_shared]
        """)
    binary = compile_c(export_c(scenario), name="errno")
    out = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "KSMREPRO step=1 errno=EINVAL" in out.stdout
    res = parse_output(scenario, out.stdout)
    assert (res.status, res.error.step, res.error.errno) == ("failed", 1, "EINVAL")


def test_mremap_dontunmap_passes_a_null_new_address(scenario_from, compile_c):
    # glibc reads mremap()'s variadic new_address for MREMAP_DONTUNMAP too: without an explicit
    # NULL the kernel got a stale register and 6.1's mremap_to() answered EINVAL (booted)
    scenario = scenario_from("""\
        name: dontunmap
        steps:
          - mmap: {as: a, length: 2 pages}
          - memset: {addr: a, value: 7, length: 2 pages}
          - mremap: {old_addr: a, old_size: 2 pages, new_size: 2 pages,
                     flags: [MREMAP_MAYMOVE, MREMAP_DONTUNMAP], as: b}
          - read: {addr: a, length: 2 pages}
          - print: [rss_anon]
        """)
    source = export_c(scenario)
    assert "MREMAP_MAYMOVE | MREMAP_DONTUNMAP, NULL);" in " ".join(source.split())
    binary = compile_c(source, name="dontunmap")
    out = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    res = parse_output(scenario, out.stdout)
    assert (res.status, res.error) == ("passed", None)


def test_initial_knobs_a_kernel_lacks_are_left_out(scenario_from):
    # booted: ltp-ksm01.yaml sets smart_scan, which 6.1 does not have; the run stopped at
    # setup with ENOENT where the v6.1 model (and LTP, TST_SR_SKIP_MISSING) go on
    scenario = scenario_from("""\
        name: knobs
        ksm: {smart_scan: 0, pages_to_scan: 50}
        steps:
          - print: [full_scans]
        """)
    source = " ".join(export_c(scenario).split())
    assert ('check(write_file("/sys/kernel/mm/ksm/smart_scan", "0") < 0 && errno != ENOENT, 0);'
            in source)
    # a sysfs step is the scenario's own write: ENOENT there is the step's failure
    scenario = scenario_from("""\
        name: knobs
        steps:
          - sysfs: {path: /sys/kernel/mm/ksm/smart_scan, value: 0}
        """)
    assert "errno != ENOENT" not in export_c(scenario)


# -- escaping ----------------------------------------------------------------------------------

HOSTILE = 'x */ int EVIL; /* ??/ \\ "q" \n#error EVIL\u00e9'


def _hostile_scenario() -> Scenario:
    steps = (
        Mmap(index=0, as_="int", length=8192),
        Mmap(index=1, as_="MAP_FIXED", length=4096, label=HOSTILE),
        Mmap(index=2, as_="int_", length=4096),
        Memset(index=3, addr=AddrExpr("int", 4096), value=0x2A, length=4096),
        Madvise(index=4, addr=AddrExpr("MAP_FIXED"), length=4096, advice="MADV_MERGEABLE"),
        Fork(index=5, child="evil */ child"),
        Touch(index=6, proc="evil */ child", addr=AddrExpr("int_"), length=4096,
              label=HOSTILE),
        Print(index=7, proc="evil */ child", counters=("pages_shared",)),
        Exit(index=8, proc="evil */ child"),
        Expect(index=9, values=(("pages_sharing", Comparison(">=", 0)),), label=HOSTILE),
    )
    return Scenario(name=HOSTILE, steps=steps, description=HOSTILE, source=HOSTILE)


@pytest.mark.parametrize("fmt", ["c", "kselftest"])
def test_hostile_names_and_labels_never_reach_the_code(fmt, compile_c, code_only):
    source = export_c(_hostile_scenario(), fmt)
    code = code_only(source)
    assert "EVIL" not in code
    assert "#error" not in code
    assert "\u00e9" not in source  # non-ASCII is escaped everywhere
    assert "static char *v_int, *v_MAP_FIXED, *int_;" in source
    compile_c(source, name=f"hostile-{fmt}")


def test_c_string_escapes_everything_risky():
    assert c_string('a"b') == '"a\\"b"'
    assert c_string("back\\slash") == '"back\\\\slash"'
    assert c_string("??/") == '"\\?\\?/"'
    assert c_string("\u00e9") == '"\\303\\251"'
    assert c_string("1\n2\x01") == '"1\\n2\\001"'


def test_c_comment_cannot_close_or_nest():
    text = c_comment("a */ b /* c ?? d \u00e9\n\\")
    assert "*/" not in text
    assert "/*" not in text
    assert "??" not in text
    assert "\n" not in text
    assert text.isascii()
    assert not text.endswith("\\")
    assert c_comment("***/") == "**\\*\\/" or "*/" not in c_comment("***/")


@pytest.mark.parametrize(("name", "expected"), [
    ("base", "base"), ("base2", "base2"), ("int", "v_int"), ("main", "v_main"),
    ("linux", "v_linux"), ("errno", "v_errno"), ("PROT_READ", "v_PROT_READ"),
    ("_hidden", "v__hidden"), ("9lives", "v_9lives"), ("a-b.c", "a_b_c"), ("step", "v_step"),
])
def test_c_identifier(name, expected):
    assert c_identifier(name, set()) == expected


def test_c_identifier_keeps_names_distinct():
    taken: set[str] = set()
    assert [c_identifier(n, taken) for n in ("a-b", "a_b", "a.b")] == ["a_b", "a_b_2", "a_b_3"]


def test_c_size_and_wrap():
    assert [c_size(n) for n in (4096, 3 * 4096, 512 << 10, 1 << 30, 2 << 20, 4097)] == [
        "PAGE_SIZE", "3 * PAGE_SIZE", "512 * KB", "1 * GB", "2 * MB", "4097UL"]
    lines = wrap_c("check(f(aaaaaaaaaa, bbbbbbbbbb, cccccccccc), dddddddddd) < 0, 0);", 8, 40)
    assert len(lines) > 1
    assert all(8 + len(x) <= 40 for x in lines[:-1])


# -- what cannot be exported -----------------------------------------------------------------------

def test_unknown_constant_is_an_export_error():
    scn = Scenario(name="x", steps=(
        Mmap(index=0, as_="a", length=4096),
        Madvise(index=1, addr=AddrExpr("a"), length=4096, advice="MADV_BOGUS")))
    with pytest.raises(ExportError, match="MADV_BOGUS"):
        export_c(scn)


def test_errno_on_a_memory_access_is_an_export_error():
    scn = Scenario(name="x", steps=(
        Mmap(index=0, as_="a", length=4096),
        Memset(index=1, addr=AddrExpr("a"), value=1, length=4096, errno="EFAULT")))
    with pytest.raises(ExportError, match="errno"):
        export_c(scn)


def test_unbound_name_and_bad_counter_are_export_errors():
    with pytest.raises(ExportError, match="never bound"):
        export_c(Scenario(name="x", steps=(
            Memset(index=0, addr=AddrExpr("nowhere"), value=1, length=4096),)))
    with pytest.raises(ExportError, match="counter"):
        export_c(Scenario(name="x", steps=(Print(index=0, counters=('x"); system("',)),)))


def test_main_exiting_early_is_an_export_error():
    scn = Scenario(name="x", steps=(Exit(index=0), Print(index=1, counters=("pages_shared",))))
    with pytest.raises(ExportError, match="main can only exit"):
        export_c(scn)


def test_unknown_format():
    with pytest.raises(ExportError, match="format"):
        export_c(Scenario(name="x", steps=()), "rust")
