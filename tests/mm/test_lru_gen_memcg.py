"""The multi-gen LRU (lru_gen.py) and memory cgroups (memcontrol.py)."""

from ksmrepro.mm.const import PG_active, PG_referenced, PG_workingset
from ksmrepro.mm.lru_gen import LIST_BASE, lru_gen_from_seq
from ksmrepro.mm.mm_types import folio_test_ksm
from tests.mm.conftest import P, folio_at, name, run_steps

MGLRU = "- sysfs: {path: /sys/kernel/mm/lru_gen/enabled, value: y}\n"


def test_switching_mglru_on_and_off_moves_every_folio():
    sr = run_steps(MGLRU + """
        - mmap: {as: a, length: 40 pages}
        - memset: {addr: a, value: 1, length: 40 pages}
        - sysfs: {path: /sys/kernel/mm/lru_gen/enabled, value: n}
        - sysfs: {path: /sys/kernel/mm/lru_gen/enabled, value: y}
    """)
    k = sr.k
    lv = k.lruvec
    assert lv.lrugen is not None and k.lru_gen_enabled()
    on_gens = sum(lv.lists[LIST_BASE + g].pages for g in range(4))
    batched = sum(f.nr for b in k.lru_add for f in b)
    assert on_gens + batched == 40 and lv.lists[0].pages == lv.lists[1].pages == 0


def test_faulted_folios_go_to_the_second_youngest_generation():
    # lru_gen_folio_seq(): PG_active (set by folio_add_lru() in a fault) -> max_seq - 1
    sr = run_steps(MGLRU + """
        - mmap: {as: a, length: 64 pages}
        - memset: {addr: a, value: 1, length: 64 pages}
    """)
    k = sr.k
    k.swap.lru_add_drain_all()
    g = k.lruvec.lrugen
    f, _ = folio_at(sr, name(sr, "a"))
    assert f.gen == lru_gen_from_seq(g.max_seq - 1)
    assert not f.flags & PG_active  # only a placement hint, cleared


def test_lru_gen_set_refs_marks_first_then_activates():
    sr = run_steps(MGLRU + """
        - mmap: {as: a, length: 1 page}
        - memset: {addr: a, value: 1, length: 1 page}
    """)
    f, _ = folio_at(sr, name(sr, "a"))
    lg = sr.k.lru_gen
    f.flags &= ~(PG_referenced | PG_workingset)
    assert lg.lru_gen_set_refs(f) is False and f.flags & PG_referenced
    assert lg.lru_gen_set_refs(f) is True and f.flags & PG_workingset
    assert not f.flags & PG_referenced


def test_aging_skips_mms_that_did_not_run_or_are_too_small():
    # should_skip_mm(): an mm that has not run since the last walk, or with fewer than
    # MIN_LRU_BATCH pages, keeps its young ptes
    sr = run_steps(MGLRU + """
        - mmap: {as: a, length: 100 pages}
        - memset: {addr: a, value: 1, length: 100 pages}
        - spawn: {name: small}
        - mmap: {as: s, length: 8 pages}
          proc: small
        - memset: {addr: s, value: 2, length: 8 pages}
          proc: small
    """)
    k = sr.k
    k.swap.lru_add_drain_all()
    lv = k.lruvec
    main, small = k.tasks["main"].mm, k.tasks["small"].mm
    main.lru_gen_ran = False  # main has been waiting since the last walk
    small.lru_gen_ran = True
    k.lru_gen.try_to_inc_max_seq(lv, k.memcg.root)
    assert folio_at(sr, name(sr, "a"))[0].ptes[0].young  # not walked: did not run
    assert folio_at(sr, name(sr, "s", "small"), "small")[0].ptes[0].young  # too small
    main.lru_gen_ran = True
    k.lru_gen.try_to_inc_max_seq(lv, k.memcg.root)
    assert not folio_at(sr, name(sr, "a"))[0].ptes[0].young  # walked, young cleared
    assert not main.lru_gen_ran


def test_mglru_stock_kernel_swaps_the_ksm_folio_the_classic_lru_strands():
    steps = """
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: base, length: 2 pages}
        - madvise: {addr: base, length: 2 pages, advice: MADV_MERGEABLE}
        - memset: {addr: base, value: 0x77, length: 2 pages}
        - sleep: 100ms
        - mmap: {as: base2, length: 512K}
        - memset: {addr: base2, value: 0x77, length: 512K}
        - pressure: {anon: 96M, touches: 2}
        - sleep: 1s
        - print: [pages_shared, pages_sharing]
    """
    classic = run_steps(steps, memory="64M", swap="128M")
    mglru = run_steps(MGLRU + steps, memory="64M", swap="128M")
    assert classic.result.observations[0].values == {"pages_shared": 1, "pages_sharing": 1}
    assert mglru.result.observations[0].values == {"pages_shared": 0, "pages_sharing": 0}


def test_memcg_charges_faults_to_the_attached_cgroup_and_children_inherit_it():
    sr = run_steps("""
        - mmap: {as: before, length: 4 pages}
        - memset: {addr: before, value: 1, length: 4 pages}
        - cgroup: {name: t}
        - cgroup_attach: {cgroup: t}
        - mmap: {as: a, length: 10 pages}
        - memset: {addr: a, value: 1, length: 10 pages}
        - fork: {child: c}
        - memset: {addr: a, value: 2, length: 3 pages}
          proc: c
        - print: [memory_current]
    """)
    t = sr.k.memcg.get("t")
    assert t.usage == 13  # 10 after the attach, 3 CoW copies by the child; not the 4 before
    assert sr.result.observations[0].values["memory_current"] == 13 * P
    assert folio_at(sr, name(sr, "before"))[0].memcg is None  # charges never move (v2)


def test_memory_max_reclaims_within_the_cgroup_and_memory_reclaim_answers_eagain():
    sr = run_steps("""
        - cgroup: {name: t, memory_max: 1M}
        - cgroup_attach: {cgroup: t}
        - mmap: {as: a, length: 512 pages}
        - memset: {addr: a, value: 1, length: 512 pages}
        - print: [memory_current, swap_ents]
        - memory_reclaim: {cgroup: t, amount: 1G}
        - memory_reclaim: {cgroup: t, amount: 1G}
          errno: EAGAIN
    """, memory="64M", swap="128M")
    obs = sr.result.observations[0].values
    # try_charge_memcg() reclaimed within the cgroup (swapping) to stay under memory.max
    assert obs["memory_current"] <= 1024 * 1024 and obs["swap_ents"] >= 256
    assert sr.result.error is None
    recorded = [o for o in sr.result.step_outcomes if o.errno == "EAGAIN"]
    assert [o.expected for o in recorded] == [False, True]  # recorded, then asked for


def test_memcg_reclaim_only_counts_references_from_the_cgroups_own_mms():
    # invalid_folio_referenced_vma(): a young pte in another memcg's mm does not count
    sr = run_steps("""
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - cgroup: {name: t}
        - cgroup_attach: {cgroup: t}
        - mmap: {as: a, length: 1 page}
        - memset: {addr: a, value: 1, length: 1 page}
    """)
    k = sr.k
    f, _ = folio_at(sr, name(sr, "a"))
    t = k.memcg.get("t")
    assert k.rmap.folio_referenced(f, t)[0] == 1
    f.ptes[0].young = True
    other = k.memcg.create("other", None)
    assert k.rmap.folio_referenced(f, other)[0] == 0 and f.ptes[0].young
    assert not folio_test_ksm(f)


def test_ksmd_scans_between_the_tries_of_a_long_memory_reclaim():
    # A write to memory.reclaim that swaps 16,384 pages takes ~85 ms of simulated time; ksmd,
    # on the other CPU, wakes every 20 ms meanwhile and must see the memory as it is between
    # the tries, not only after the write returns.
    sr = run_steps("""
        - cgroup: {name: t}
        - cgroup_attach: {cgroup: t}
        - mmap: {as: k, length: 2 pages}
        - madvise: {addr: k, length: 2 pages, advice: MADV_MERGEABLE}
        - memset: {addr: k, value: 0x77, length: 2 pages}
        - mmap: {as: a, length: 64M}
        - touch: {addr: a, length: 64M}
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - memory_reclaim: {cgroup: t, amount: 1G}
          errno: EAGAIN
    """, model="v6.1", memory="512M", swap="1G", trace=True)
    assert sr.result.error is None
    events = [e for e in sr.k.trace_events if e["step"] == 8]
    rounds = [i for i, e in enumerate(events) if e["event"] == "memory_reclaim"]
    scans = [i for i, e in enumerate(events) if e["event"] == "ksm_do_scan"]
    # try 1 finds every page young; try 2 writes them all to swap, and the writes end after
    # the try, so try 3 frees them; then fruitless tries until EAGAIN
    reclaimed = [events[i]["data"]["reclaimed"] for i in rounds]
    assert len(rounds) == 17 and reclaimed[:3] == [0, 0, 16386] and not any(reclaimed[3:])
    assert sr.k.vmstat["pswpout"] >= 16384
    # full scans 2 and 3 fall due while try 2 writes (a try's event is stamped with its end,
    # a scan's with its own time): they run after try 2 and before try 3
    assert len(scans) == 2 and all(rounds[1] < i < rounds[2] for i in scans)
    t1, t2 = events[rounds[0]]["time_ns"], events[rounds[1]]["time_ns"]
    assert t2 - t1 > 60_000_000
    assert all(t1 < events[i]["time_ns"] < t2 for i in scans)
