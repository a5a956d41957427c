"""load_scenario: valid scenarios become the right typed steps; names, processes and cgroups."""

from pathlib import Path

import pytest

from ksmrepro.errors import ScenarioError
from ksmrepro.scenario import load_scenario, load_scenario_text
from ksmrepro.scenario import loader as L
from ksmrepro.scenario.steps import (
    STEP_TYPES,
    AddrExpr,
    Comparison,
    Dump,
    Exit,
    Expect,
    Fork,
    Machine,
    Madvise,
    Mmap,
    Mremap,
    Prctl,
    Pressure,
    Print,
    Sleep,
    Sysfs,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
G = 1 << 30


def steps(body: str, head: str = "name: t\n"):
    """The steps of a scenario whose steps: list is ``body`` (lines starting with '  - ')."""
    return load_scenario_text(f"{head}steps:\n{body}").steps


def error(body: str, head: str = "name: t\n") -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(f"{head}steps:\n{body}", "t.yaml")
    return info.value


# -- the flagship ---------------------------------------------------------------------------------


def test_hugh():
    scn = load_scenario(ROOT / "scenarios" / "hugh.yaml")
    assert scn.name == "ksm-mremap-swapout"
    assert scn.path.endswith("scenarios/hugh.yaml")
    assert scn.machine == Machine(memory=G, swap=2 * G, cpus=2, thp="never")
    assert scn.tags == ("flagship", "mremap", "reclaim")
    assert "v7.0-rc6+ksm-pte-mkold" in scn.models
    assert [m for m, _ in scn.known_failures] == ["mm-2026-04+ksm-pte-mkold"]
    assert scn.description is not None and scn.source is not None
    ops = [s.KEY for s in scn.steps]
    assert ops == ["sysfs", "mmap", "madvise", "madvise", "memset", "sleep", "mremap", "mmap",
                   "madvise", "memset", "expect", "pressure", "expect"]
    assert [s.index for s in scn.steps] == list(range(13))
    assert scn.steps[0] == Sysfs(index=0, line=scn.steps[0].line, column=5,
                                 path="/sys/kernel/mm/ksm/run", value="1")
    mremap = scn.steps[6]
    assert isinstance(mremap, Mremap)
    assert mremap.old_addr == AddrExpr("base", 4096)
    assert mremap.new_addr == AddrExpr("base", 8192)
    assert (mremap.old_size, mremap.new_size) == (4096, 4096)
    assert mremap.flags == ("MREMAP_MAYMOVE", "MREMAP_FIXED")
    assert isinstance(scn.steps[5], Sleep) and scn.steps[5].ns == 10**9
    assert scn.steps[7] == Mmap(index=7, line=scn.steps[7].line, column=5, as_="base2",
                                length=512 * 1024)
    expect = scn.steps[10]
    assert isinstance(expect, Expect)
    assert expect.values == (("pages_shared", Comparison("==", 1)),
                             ("pages_sharing", Comparison("==", 1)))
    assert scn.steps[11] == Pressure(index=11, line=scn.steps[11].line, column=5, anon=G)
    # Lines are the file's: the mremap spans two lines and the next step follows it.
    text = (ROOT / "scenarios" / "hugh.yaml").read_text().splitlines()
    assert text[mremap.line - 1].lstrip().startswith("- mremap:")
    assert text[scn.steps[7].line - 1].lstrip().startswith("- mmap: {as: base2")
    assert text[scn.line_of_name - 1].startswith("name:")


# -- every step -----------------------------------------------------------------------------------


def test_all_steps_file_covers_every_step_type():
    scn = load_scenario(DATA / "all_steps.yaml")
    assert {s.KEY for s in scn.steps} == set(STEP_TYPES)
    assert set(L.STEP_SPECS) == set(STEP_TYPES)
    for key, spec in L.STEP_SPECS.items():
        assert STEP_TYPES[key] is spec.cls


def test_all_steps_values():
    scn = load_scenario(DATA / "all_steps.yaml")
    s = {st.index: st for st in scn.steps}
    assert scn.machine == Machine(memory=2 * G, swap=0, cpus=4, thp="madvise", costs="qemu-tcg")
    assert scn.ksm == (("run", 0), ("pages_to_scan", 1000), ("sleep_millisecs", 0),
                       ("advisor_mode", "scan-time"))
    assert scn.known_failures == (("v7.0-rc6", "example reason"),)
    assert s[1].value == "y"
    assert s[2].prot == ("PROT_READ", "PROT_WRITE") and s[2].flags == ("MAP_PRIVATE", "MAP_ANONYMOUS")
    assert s[3].addr == AddrExpr(None, 0x7F0000000000)
    assert s[3].prot == ("PROT_READ", "PROT_WRITE")
    assert s[3].flags == ("MAP_PRIVATE", "MAP_ANONYMOUS", "MAP_FIXED")
    assert s[3].line == 15 and s[4].line == 21
    assert (s[5].value, s[5].length) == (0x77, 8192)
    assert (s[6].addr, s[6].times, s[6].value) == (AddrExpr("base", 8192), 3, 1)
    assert (s[7].times, s[7].value) == (1, None)
    assert s[8].addr == AddrExpr("fixed", 4096) and s[8].length == 8192
    assert s[9].prot == ("PROT_NONE",)
    assert s[10].as_ == "moved"
    assert s[11].flags == () and s[11].new_addr is None and s[11].as_ is None
    assert s[12].addr == AddrExpr("fixed", 60 * 1024)
    assert s[13] == Prctl(index=13, line=31, column=5, option="PR_SET_MEMORY_MERGE", value=1)
    assert s[14].option == "PR_GET_MEMORY_MERGE" and s[14].value == 0
    assert s[15] == Fork(index=15, line=33, column=5, child="kid")
    assert s[16].proc == "kid" and s[16].advice == "MADV_UNMERGEABLE"
    assert s[18].proc == "other" and s[18].label == "other's own base"
    assert (s[19].ns, s[20].ns) == (20 * 10**6, 5 * 10**6)
    assert s[21].full_scans == 2
    assert s[22].counters is None
    assert s[23].counters == ("pages_shared",)
    assert s[24].counters == ("pages_shared", "pages_sharing", "memory_current")
    assert s[25].values == (("pages_shared", Comparison("==", 1)),
                            ("pages_sharing", Comparison(">=", 1)),
                            ("full_scans", Comparison("!=", 0)))
    assert s[26].proc == "kid"
    assert (s[27].name, s[27].memory_max) == ("grp", 256 << 20)
    assert s[28].memory_max is None
    assert s[29].cgroup == "grp" and s[29].proc == "other"
    assert (s[30].amount, s[30].errno) == (1 << 20, "EAGAIN")
    assert (s[31].anon, s[31].touches, s[31].cpu) == (G, 2, None)
    assert (s[32].touches, s[32].cpu) == (1, 3)
    assert s[33].what == ("maps", "ksm")
    assert s[34].what == s[35].what == s[36].what == ("maps", "pages", "ksm")
    assert s[37].signal == "SIGSEGV" and s[37].addr == AddrExpr(None, 0x1000)
    assert s[38].errno == "EINVAL" and s[38].addr == AddrExpr("base", 1)
    assert [type(s[i]) for i in (39, 40, 41)] == [Exit, Exit, Exit]
    assert [s[i].proc for i in (39, 40, 41)] == ["kid", "other", "main"]


def test_step_defaults():
    (m,) = steps("  - mmap: {as: a, length: 1}\n")
    assert m == Mmap(index=0, line=3, column=5, as_="a", length=1)
    assert (m.proc, m.label, m.errno, m.signal) == ("main", None, None, None)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("[MREMAP_MAYMOVE, MREMAP_FIXED]", ("MREMAP_MAYMOVE", "MREMAP_FIXED")),
        ("MREMAP_MAYMOVE", ("MREMAP_MAYMOVE",)),
        ("MREMAP_MAYMOVE|MREMAP_FIXED", ("MREMAP_MAYMOVE", "MREMAP_FIXED")),
        ("'MREMAP_MAYMOVE | MREMAP_FIXED'", ("MREMAP_MAYMOVE", "MREMAP_FIXED")),
        ("[MREMAP_MAYMOVE|MREMAP_FIXED, MREMAP_FIXED]", ("MREMAP_MAYMOVE", "MREMAP_FIXED")),
        ("[]", ()),
        ("0", ()),
    ],
)
def test_flag_forms(flags, expected):
    *_, st = steps(
        "  - mmap: {as: a, length: 2 pages}\n"
        f"  - mremap: {{old_addr: a, old_size: 1 page, new_size: 1 page, flags: {flags},"
        " new_addr: a + 1 page}\n"
    )
    assert st.flags == expected


def test_prot_and_map_flag_forms():
    (m,) = steps("  - mmap: {as: a, length: 1, prot: PROT_READ, flags: MAP_SHARED|MAP_ANONYMOUS}\n")
    assert m.prot == ("PROT_READ",) and m.flags == ("MAP_SHARED", "MAP_ANONYMOUS")
    (m,) = steps("  - mmap: {as: a, length: 1, prot: [], flags: [MAP_PRIVATE]}\n")
    assert m.prot == () and m.flags == ("MAP_PRIVATE",)


def test_every_advice_and_errno_accepted():
    from ksmrepro.scenario import values as V

    body = "  - mmap: {as: a, length: 1 page}\n" + "".join(
        f"  - {{madvise: {{addr: a, length: 1 page, advice: {adv}}}, errno: {V.ERRNOS[i % 9]}}}\n"
        for i, adv in enumerate(V.ADVICE)
    )
    got = steps(body)[1:]
    assert [s.advice for s in got] == list(V.ADVICE)
    assert all(isinstance(s, Madvise) and s.errno in V.ERRNOS for s in got)


def test_every_counter_accepted_by_print_and_expect():
    from ksmrepro.scenario import values as V

    names = ", ".join(V.COUNTERS)
    exp = ", ".join(f"{c}: '>= 0'" for c in V.COUNTERS)
    p, e = steps(f"  - print: [{names}]\n  - expect: {{{exp}}}\n")
    assert isinstance(p, Print) and p.counters == tuple(V.COUNTERS)
    assert isinstance(e, Expect) and [k for k, _ in e.values] == list(V.COUNTERS)


def test_every_sysfs_path_accepted():
    from ksmrepro.scenario import values as V

    got = steps("".join(f"  - sysfs: {{path: {p}, value: 0}}\n" for p in V.SYSFS_PATHS))
    assert [s.path for s in got] == list(V.SYSFS_PATHS)
    assert all(s.value == "0" for s in got)


def test_sysfs_values_are_strings():
    a, b, c = steps(
        "  - sysfs: {path: /sys/kernel/mm/ksm/pages_to_scan, value: 0x10}\n"
        "  - sysfs: {path: /sys/kernel/mm/ksm/advisor_mode, value: scan-time}\n"
        "  - sysfs: {path: /sys/kernel/mm/lru_gen/enabled, value: '0x0007'}\n"
    )
    assert (a.value, b.value, c.value) == ("16", "scan-time", "0x0007")


def test_dump_forms():
    got = steps("  - dump: {what: pages}\n  - dump: {what: all}\n  - dump: null\n")
    assert [d.what for d in got] == [("pages",), ("maps", "pages", "ksm"), ("maps", "pages", "ksm")]
    assert all(isinstance(d, Dump) for d in got)


def test_top_level_optional_keys():
    scn = load_scenario_text(
        "name: t\ndescription:\nsource: null\ntags: one\nmodels: v7.0-rc6\n"
        "steps: [{exit: }]\n"
    )
    assert scn.description is None and scn.source is None
    assert scn.tags == ("one",) and scn.models == ("v7.0-rc6",)
    assert scn.machine == Machine() and scn.ksm == () and scn.known_failures == ()


@pytest.mark.parametrize(
    ("ksm", "expected"),
    [
        ("{run: 2}", (("run", 2),)),
        ("{use_zero_pages: 1, smart_scan: 0}", (("use_zero_pages", 1), ("smart_scan", 0))),
        ("{max_page_sharing: 2, advisor_mode: none}", (("max_page_sharing", 2),
                                                       ("advisor_mode", "none"))),
    ],
)
def test_ksm_knobs(ksm, expected):
    assert load_scenario_text(f"name: t\nksm: {ksm}\nsteps: [{{exit: }}]\n").ksm == expected


@pytest.mark.parametrize(
    "ksm", ["{run: 3}", "{run: true}", "{run: '1'}", "{pages_to_scan: -1}", "{advisor_mode: 1}",
            "{use_zero_pages: 2}", "{pages_shared: 1}", "[run]"]
)
def test_ksm_knobs_rejected(ksm):
    with pytest.raises(ScenarioError, match=r"^t\.yaml:2:"):
        load_scenario_text(f"name: t\nksm: {ksm}\nsteps: [{{exit: }}]\n", "t.yaml")


@pytest.mark.parametrize("thp", ["never", "always", "madvise"])
def test_machine_thp(thp):
    scn = load_scenario_text(f"name: t\nmachine: {{thp: {thp}}}\nsteps: [{{exit: }}]\n")
    assert scn.machine.thp == thp


# -- names belong to processes ---------------------------------------------------------------


def test_name_must_be_bound_before_use():
    e = error("  - madvise: {addr: base, length: 1, advice: MADV_COLD}\n"
              "  - mmap: {as: base, length: 1}\n")
    assert (e.line, e.column) == (3, 21)
    assert "name 'base' is not bound in process 'main'" in e.message
    assert "no names are bound in process 'main' yet" in e.message


def test_as_cannot_be_used_in_its_own_step():
    e = error("  - mmap: {as: a, length: 2 pages}\n"
              "  - mremap: {old_addr: a, old_size: 1, new_size: 1, flags: [MREMAP_MAYMOVE,"
              " MREMAP_FIXED], new_addr: b, as: b}\n")
    assert "name 'b' is not bound" in e.message


def test_mremap_as_binds_the_new_name():
    got = steps("  - mmap: {as: a, length: 1 page}\n"
                "  - mremap: {old_addr: a, old_size: 1 page, new_size: 2 pages,"
                " flags: MREMAP_MAYMOVE, as: b}\n"
                "  - touch: {addr: b + 1 page, length: 1 page}\n")
    assert got[2].addr == AddrExpr("b", 4096)


def test_fork_copies_names_and_later_binds_stay_private():
    got = steps("  - mmap: {as: a, length: 1}\n"
                "  - fork: {child: c}\n"
                "  - {read: {addr: a, length: 1}, proc: c}\n"
                "  - {mmap: {as: only_child, length: 1}, proc: c}\n"
                "  - {read: {addr: only_child, length: 1}, proc: c}\n")
    assert got[2].proc == "c"
    e = error("  - fork: {child: c}\n"
              "  - {mmap: {as: only_child, length: 1}, proc: c}\n"
              "  - read: {addr: only_child, length: 1}\n")
    assert "name 'only_child' is not bound in process 'main'" in e.message
    assert (e.line, e.column) == (5, 18)
    e = error("  - fork: {child: c}\n"
              "  - mmap: {as: late, length: 1}\n"
              "  - {read: {addr: late, length: 1}, proc: c}\n")
    assert "name 'late' is not bound in process 'c'" in e.message


def test_fork_of_a_child_inherits_the_childs_names():
    got = steps("  - spawn: {name: p}\n"
                "  - {mmap: {as: x, length: 1}, proc: p}\n"
                "  - {fork: {child: q}, proc: p}\n"
                "  - {read: {addr: x, length: 1}, proc: q}\n")
    assert got[3].proc == "q"


def test_spawn_starts_empty():
    e = error("  - mmap: {as: a, length: 1}\n"
              "  - spawn: {name: s}\n"
              "  - {read: {addr: a, length: 1}, proc: s}\n")
    assert "name 'a' is not bound in process 's'" in e.message


def test_literal_addresses_need_no_binding():
    (r,) = steps("  - {read: {addr: 0x1000, length: 1}, signal: SIGSEGV}\n")
    assert r.addr == AddrExpr(None, 4096)


# -- processes -------------------------------------------------------------------------------


def test_proc_must_exist():
    e = error("  - {exit: , proc: child}\n")
    assert (e.line, e.column) == (3, 20)
    assert e.message == "step 0 (exit): unknown process 'child'; expected one of: main"


def test_proc_created_later_is_not_yet_there():
    e = error("  - {exit: , proc: kid}\n  - fork: {child: kid}\n")
    assert "unknown process 'kid'" in e.message


def test_proc_gone_after_exit_and_name_reusable():
    e = error("  - fork: {child: kid}\n  - {exit: , proc: kid}\n  - {exit: , proc: kid}\n")
    assert e.message.startswith("step 2 (exit): process 'kid' exited at step 1")
    got = steps("  - fork: {child: kid}\n  - {exit: , proc: kid}\n  - spawn: {name: kid}\n"
                "  - {exit: , proc: kid}\n")
    assert [s.proc for s in got] == ["main", "kid", "main", "kid"]


def test_child_name_must_be_new():
    e = error("  - fork: {child: kid}\n  - spawn: {name: kid}\n")
    assert e.message == "step 1 (spawn): name: process 'kid' already exists; expected a new name"


def test_main_can_exit_and_others_go_on():
    got = steps("  - fork: {child: kid}\n  - exit:\n  - {print: all, proc: kid}\n")
    assert got[2].proc == "kid"
    e = error("  - fork: {child: kid}\n  - exit:\n  - print: all\n")
    assert "process 'main' exited at step 1" in e.message and "'proc:' (kid)" in e.message


# -- cgroups ---------------------------------------------------------------------------------


def test_cgroups_must_be_created_first():
    e = error("  - memory_reclaim: {cgroup: g, amount: 1M}\n")
    assert "cgroup 'g' does not exist" in e.message and "no cgroup has been made yet" in e.message
    e = error("  - cgroup: {name: g}\n  - cgroup: {name: g}\n")
    assert "cgroup 'g' already exists (made at step 0)" in e.message
    got = steps("  - cgroup: {name: g.1}\n  - cgroup_attach: {cgroup: g.1}\n")
    assert got[1].cgroup == "g.1"


# -- requirements and ranges -----------------------------------------------------------------


def test_requirements():
    assert "MREMAP_FIXED needs it" in error(
        "  - mmap: {as: a, length: 1}\n"
        "  - mremap: {old_addr: a, old_size: 1, new_size: 1, flags: [MREMAP_FIXED]}\n").message
    (p,) = steps("  - prctl: {option: PR_GET_MEMORY_MERGE}\n")
    assert p.value == 0
    assert "PR_SET_MEMORY_MERGE needs it" in error(
        "  - prctl: {option: PR_SET_MEMORY_MERGE}\n").message


@pytest.mark.parametrize(
    "body",
    [
        "  - memset: {addr: 0, value: -1, length: 1}\n",
        "  - touch: {addr: 0, length: 1, times: 0}\n",
        "  - ksm_wait: {full_scans: 0}\n",
        "  - pressure: {anon: 1G, touches: 0}\n",
        "  - pressure: {anon: 1G, cpu: -1}\n",
        "  - mmap: {as: a, length: -1}\n",
        "  - mmap: {as: a, length: 1.5}\n",
        "  - mmap: {as: '1a', length: 1}\n",
        "  - prctl: {option: PR_SET_MEMORY_MERGE, value: yes}\n",
        "  - sleep: -1\n",
        "  - sleep: {duration: 1s}\n",
        "  - expect: {pages_shared: true}\n",
        "  - expect: [pages_shared]\n",
        "  - print: {pages_shared: 1}\n",
        "  - print: [all]\n",
        "  - dump: {what: []}\n",
        "  - fork: {}\n",
        "  - fork: kid\n",
        "  - {exit: , label: ''}\n",
        "  - {exit: , label: 3}\n",
        "  - {exit: , proc: [main]}\n",
    ],
)
def test_bad_values_rejected_at_their_node(body):
    e = error(body)
    assert e.line == 3
    assert e.message.startswith("step 0 (")
    assert "expected" in e.message or "did you mean" in e.message


def test_cpu_must_exist_on_the_machine():
    (p,) = steps("  - pressure: {anon: 1G, cpu: 7}\n", head="name: t\nmachine: {cpus: 8}\n")
    assert p.cpu == 7
    assert "0 to 1 (machine.cpus is 2)" in error("  - pressure: {anon: 1G, cpu: 2}\n").message


def test_aliases_are_fine():
    got = steps("  - mmap: &m {as: a, length: 1}\n  - munmap: {addr: a, length: &l 4K}\n"
                "  - read: {addr: a, length: *l}\n")
    assert got[2].length == 4096


def test_explicit_standard_tags_are_fine():
    (m,) = steps("  - mmap: {as: !!str a, length: !!int 4096}\n")
    assert m.as_ == "a" and m.length == 4096
