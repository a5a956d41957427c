"""The simulated machine: clock and timers, memory, tasks, and the system-call surface the
runner drives.  Everything a scenario step does enters here as a user action."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ksmrepro.errors import KernelBug
from ksmrepro.mm import content as C
from ksmrepro.mm import memory, mmap, page_alloc, swap
from ksmrepro.mm import vma as V
from ksmrepro.mm.const import (
    MAP,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT,
    VM_BUG_ON,
    VM_DONTCOPY,
    VM_FLAG_NAMES,
    VM_WIPEONFORK,
    Errno,
    PG_active,
    PG_referenced,
    pg_names,
)
from ksmrepro.mm.ksm import Ksm, KsmStableNode
from ksmrepro.mm.kstrtox import UINT_MAX, kstrtouint
from ksmrepro.mm.lru_gen import LIST_BASE, LruGen
from ksmrepro.mm.memcontrol import MemControl
from ksmrepro.mm.mm_types import (
    LRU_NAMES,
    Folio,
    MmStruct,
    PteRun,
    SwapRun,
    Task,
    VmAreaStruct,
    ZeroPte,
    folio_test_ksm,
    linear_page_index,
)
from ksmrepro.mm.pgtable import PageTable
from ksmrepro.mm.rmap import Rmap
from ksmrepro.mm.swapfile import SwapInfo
from ksmrepro.mm.vmscan import Vmscan


@dataclass(frozen=True)
class Costs:
    """Simulated time, in ns, that each unit of work costs (docs/cost-model.md).

    The defaults are the ``native`` profile: round numbers of plausible magnitude for a
    native machine, not fitted to any measurement."""

    syscall: int = 1_000
    fault: int = 700  # handle_mm_fault() of one page, with the LRU add
    zero_page: int = 300  # clearing 4 KiB
    copy_page: int = 400  # copying 4 KiB (CoW)
    write: int = 100  # a write to a present, writable page (memset of 4 KiB)
    touch: int = 20  # a read or a one-byte write to a present page
    zap: int = 50  # one pte zapped or moved
    scan: int = 200  # reclaim: one folio isolated and judged
    swap_out: int = 5_000  # one page written to swap
    swap_in: int = 8_000  # one page read from swap
    reclaim_try: int = 0  # one try_to_free_pages() round, fixed part (priority loop, slabs)
    observe: int = 0  # a print/expect: reading the counters and writing a line
    ksm_scan_batch: int = 5_000  # a ksm_do_scan() batch, fixed part
    ksm_page_visit: int = 1_500  # one rmap_item visited by ksmd
    kswapd_wakeup: int = 50_000  # from wakeup_kswapd() until kswapd runs
    # SIM-ONLY: the extra cost of a kernel path's first run in a boot, by path (the names
    # Kernel.first_use() is called with).  A TCG guest translates guest code the first time
    # it runs; natively there is no such cost.
    first_use: Mapping[str, int] = field(default_factory=dict, hash=False)


# A 2-vCPU QEMU guest under TCG (binary translation), as the real-kernel observations were
# made: fitted to the probe scenarios of docs/cost-model.md ("qemu-tcg"), timed by the guest's
# CLOCK_MONOTONIC on Debian's 6.1.0-56-amd64.  Costs not measured are scaled from native by
# the measured ratio of a neighbouring cost and say so.
QEMU_TCG = Costs(
    syscall=500_000,  # mmap/madvise/mremap/sysfs write + print: 1.0-1.5 ms, a print 0.5-1 ms
    fault=15_000,  # fault + zero_page: 24.5 us per page (touching 64M)
    zero_page=10_000,
    copy_page=10_000,  # as zero_page (not measured)
    write=10_000,  # rewriting 64M with memset: 10.7 us per page
    touch=1_000,  # not measured: 50 x native, as write's ratio to its native cost is ~100
    zap=2_000,  # not measured: 40 x native, as fault's
    scan=10_000,  # memory.reclaim of 32M: 42-44 us per page swapped (scan + swap_out)
    swap_out=32_000,
    swap_in=40_000,  # not measured: as swap_out + the fault's extra
    reclaim_try=250_000,  # memory.reclaim finding nothing: 16 tries + a print in 4-7 ms
    observe=500_000,  # print to print with nothing between: 0.9-1.2 ms cold, 0.3-0.6 ms warm
    ksm_scan_batch=4_300_000,  # 2-page full scans every 24.3 ms at sleep_millisecs=20
    ksm_page_visit=25_000,  # 16,384 unique pages at pages_to_scan=1000: 0.8 s a full scan
    kswapd_wakeup=1_000_000,  # not measured: 20 x native
    # the probes scenarios/calibration/probes/first-use-*.yaml: a path's first run minus its
    # second in the same boot, the median over the range kernel's boots (cost-model.md)
    first_use={
        "move_vma": 2_300_000,  # the first mremap of a plain page: 2.0-2.8 ms more
        "break_ksm": 600_000,  # then the first that unshares a KSM page: 0-1.5 ms more
        "shrink_lruvec": 13_400_000,  # memory.reclaim, swap path warm: 12.0-15.9 ms more
        "lru_gen_shrink_lruvec": 19_700_000,  # the same with MGLRU on: 16.0-24.1 ms more
        "shrink_folio_list:pageout": 7_000_000,  # MADV_PAGEOUT of 1 page, 10.5 ms more, less madvise_pageout
        "madvise_pageout": 3_500_000,  # MADV_PAGEOUT, swap path warm: 1.8-4.1 ms more
    },
)

COST_PROFILES: dict[str, Costs] = {"native": Costs(), "qemu-tcg": QEMU_TCG}
"""``machine.costs`` profiles (names in ksmrepro.scenario.values.COST_PROFILES)."""


class _SwapOps:
    """mm/swap.c functions bound to a kernel."""

    def __init__(self, k: Kernel) -> None:
        self.k = k

    def folio_add_lru(self, f: Folio, cpu: int) -> None:
        swap.folio_add_lru(self.k, f, cpu)

    def lru_add_drain(self, cpu: int) -> None:
        swap.lru_add_drain(self.k, cpu)

    def lru_add_drain_all(self) -> None:
        swap.lru_add_drain_all(self.k)

    def folio_mark_accessed(self, f: Folio) -> None:
        swap.folio_mark_accessed(self.k, f)


class OutOfMemory(Exception):
    """The OOM killer chose the allocating task (SIGKILL)."""


class Kernel:
    """One simulated machine running one kernel model (``switches``)."""

    def __init__(self, switches: Any, *, memory_bytes: int = 1 << 30, swap_bytes: int = 2 << 30,
                 cpus: int = 2, thp: str = "never", tracing: bool = False,
                 costs: Costs | None = None, ksmd_phase: Fraction = Fraction(0)) -> None:
        self.switches = switches
        self.costs = costs or Costs()
        if not 0 <= ksmd_phase < 1:
            raise ValueError(f"ksmd_phase {ksmd_phase} is not in [0, 1)")
        # How far into its cycle ksmd's passes fall behind a wake-up, as a fraction of one
        # cycle (CUSTOM: the knob of ``ksmrepro phases``, docs/timing.md; 0 = the kernel's
        # own wake-up, which runs ksmd at once)
        self.ksmd_phase = ksmd_phase
        self.tracing = tracing
        self.paths_run: set[str] = set()  # the paths first_use() has seen run
        self.trace_events: list[dict[str, Any]] = []
        self.step = -1
        self.now = 0
        self.pending = 0
        self._timers: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self.cpus = cpus
        self.thp = thp
        self.memory = memory
        self.mmap = mmap
        self.swap = _SwapOps(self)
        self.rmap = Rmap(self)
        self.vmscan = Vmscan(self)
        self.ksm = Ksm(self)
        self.vmstat: Counter[str] = Counter()
        self.totalram = page_alloc.totalram_pages(memory_bytes)
        self.nr_free = self.totalram - page_alloc.boot_used_pages(self.totalram)
        self.wmark_min, self.wmark_low, self.wmark_high = page_alloc.watermarks(self.totalram)
        self.kswapd_pending = False
        self.kswapd_due = 0
        self.swapfile = SwapInfo(self, swap_bytes >> PAGE_SHIFT)
        # the swap cache (an xarray indexed by swap offset in the kernel): slot -> folio
        self.swapcache = PageTable()
        self.memcg = MemControl(self)
        self.lru_gen = LruGen(self)
        self.lru_gen_on = False
        self.lru_add: list[list[Folio]] = [[] for _ in range(cpus)]
        self.tasks: dict[str, Task] = {}
        self._pid = 0
        self._pfn = 0x1000
        self.vma_ids = 0
        self.content_stamp = 1
        self.spawn_task("main", cpu=0, mm=None)
        if switches.lru_gen_enabled:  # CONFIG_LRU_GEN_ENABLED
            self.set_lru_gen(True)

    # --- time ----------------------------------------------------------------------------
    def tick(self, ns: int) -> None:
        """Work done by the running task: time passes when the step yields (``flush``)."""
        self.pending += ns

    def first_use(self, path: str) -> None:
        """Charge ``Costs.first_use[path]`` the first time ``path`` runs in this boot (a TCG
        guest translating the path's code; nothing natively): the machine, not the kernel."""
        if path in self.paths_run:
            return
        self.paths_run.add(path)
        ns = self.costs.first_use.get(path, 0)
        if ns:
            self.tick(ns)
            if self.tracing:
                self.trace("first_use", f"{path}: first run in this boot, {ns / 1e6:.1f} ms "
                           "more (machine.costs)", path=path, ns=ns)

    # reclaim work is done by (and charged to) whoever reclaims: the task in direct reclaim,
    # or kswapd, whose time is folded into the same account (CUSTOM)
    tick_reclaim = tick

    def add_timer(self, when: int, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, fn))

    def run_until(self, t: int) -> None:
        """Simulated time passes until ``t``; kernel threads (ksmd, kswapd) run when due."""
        while self._timers and self._timers[0][0] <= t:
            when, _, fn = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            fn()
        self.now = max(self.now, t)

    def flush(self) -> None:
        p, self.pending = self.pending, 0
        self.run_until(self.now + p)

    def has_timers(self) -> bool:
        return bool(self._timers)

    # --- tracing ---------------------------------------------------------------------------
    def trace(self, event: str, text: str, **data: Any) -> None:
        self.trace_events.append({"time_ns": self.now + self.pending, "step": self.step,
                                  "event": event, "text": text, "data": data})

    # --- memory ----------------------------------------------------------------------------
    def lru_gen_enabled(self) -> bool:
        return self.lru_gen_on

    def set_lru_gen(self, on: bool) -> None:
        """echo y|n > /sys/kernel/mm/lru_gen/enabled."""
        if on != self.lru_gen_on:
            self.lru_gen.change_state(on)
            self.lru_gen_on = on

    def new_folio(self, n: int, index: int, content: Any, stride: int) -> Folio:
        f = Folio(self._pfn, n, index, content, stride)
        self._pfn += n
        return f

    @property
    def lruvec(self) -> swap.Lruvec:
        """The root memcg's lruvec (the node's, when no memory cgroup is used)."""
        return self.memcg.root.lruvec

    def lruvec_of(self, f: Folio) -> swap.Lruvec:
        """folio_lruvec(): the lruvec of the folio's memcg (one node)."""
        return (f.memcg or self.memcg.root).lruvec

    def lruvec_for_task(self, task: Task) -> swap.Lruvec:
        return (task.memcg or self.memcg.root).lruvec

    def all_lruvecs(self) -> list[swap.Lruvec]:
        """shrink_node_memcgs(): every memcg's lruvec, root first."""
        return [c.lruvec for c in self.memcg.all()]

    def charge(self, task: Task, n: int) -> None:
        """mem_cgroup_charge() of ``n`` pages to the task's memcg (may reclaim or OOM)."""
        self.memcg.try_charge(task.memcg, n, task.cpu)

    def split_folio_run(self, f: Folio, at: int) -> tuple[Folio, Folio]:
        return memory.split_folio_run(self, f, at)

    def mm_pte(self, mm: MmStruct, vpn: int) -> PteRun:
        e = mm.pt[vpn]
        VM_BUG_ON(not isinstance(e, PteRun), f"{mm.owner}: no present pte at vpn {vpn:#x}")
        return e

    def alloc_pages(self, n: int, task: Task) -> None:
        """__alloc_pages(): below the min watermark, direct reclaim; below low, wake kswapd.

        kswapd runs on another CPU: once its wakeup latency has passed in the allocating
        task's time, it runs before the allocation goes on (CUSTOM: the two interleave at
        allocation granularity, not instruction by instruction)."""
        if self.kswapd_pending and self.kswapd_due <= self.now + self.pending:
            self.kswapd()
        if self.nr_free - n < self.wmark_min:
            # CUSTOM: one direct reclaim for the whole deficit of this allocation (a run of
            # folios), where the kernel reclaims SWAP_CLUSTER_MAX per folio it allocates
            need = n - (self.nr_free - self.wmark_min)
            self.vmstat["allocstall"] += 1
            self.vmscan.try_to_free_pages(need, task.cpu)
            if self.nr_free < n:  # CUSTOM: no reserves below min for user allocations
                raise OutOfMemory(f"out of memory: {task.name} needed {n} pages, "
                                  f"{self.nr_free} free and nothing reclaimable")
        self.nr_free -= n
        if self.nr_free < self.wmark_low and not self.kswapd_pending:
            self.kswapd_pending = True  # wakeup_kswapd()
            self.kswapd_due = self.now + self.pending + self.costs.kswapd_wakeup
            self.add_timer(self.kswapd_due, self.kswapd)

    def kswapd(self) -> None:
        """balance_pgdat(): reclaim until the high watermark is met."""
        if not self.kswapd_pending:
            return  # already ran inline
        self.kswapd_pending = False
        while self.nr_free < self.wmark_high:
            self.vmstat["kswapd_runs"] += 1
            # kswapd_shrink_node(): nr_to_reclaim is the zone's high watermark, whatever the
            # deficit; balance_pgdat() goes on until the watermark is met or nothing moves
            if not self.vmscan.try_to_free_pages(self.wmark_high, 0):
                break

    def free_folio(self, f: Folio) -> None:
        """The last reference is gone: off its LRU or batch, ``mapping`` cleared (which is
        what makes a KSM folio's stable node stale), pages back to the free lists."""
        if f.mapping is None and f.flags == 0 and f.cpu < 0 and f.lru < 0:
            return  # already freed
        if f.lru >= 0:
            swap.lruvec_del_folio(self.lruvec_of(f), f)
        if f.cpu >= 0:
            self.lru_add[f.cpu].remove(f)
            f.cpu = -1
        f.mapping = None
        f.flags = 0
        self.nr_free += f.nr
        self.memcg.uncharge(f)
        f.memcg = None

    def folio_put_unmapped(self, f: Folio) -> None:
        """A folio lost its last mapping: freed, unless the swap cache still holds it for a
        swap pte that references its slot."""
        if f.swap >= 0 and not self.swapfile.folio_free_swap(f):
            return
        self.free_folio(f)

    def workingset_activation(self, f: Folio) -> None:
        self.lruvec_of(f).nonresident_age += f.nr

    def deactivate_folio(self, f: Folio) -> None:
        """lru_deactivate_fn() (MADV_COLD): to the inactive head, PG_referenced cleared."""
        f.flags &= ~PG_referenced
        if f.lru >= 0:
            lv = self.lruvec_of(f)
            swap.lruvec_del_folio(lv, f)
            f.flags &= ~PG_active
            swap.lruvec_add_folio(lv, f)
        else:
            f.flags &= ~PG_active

    def do_swap_page(self, task: Task, vma: VmAreaStruct, e: SwapRun, vpn: int, n: int,
                     write: bool = False) -> None:
        memory.do_swap_page(self, task, vma, e, vpn, n, write)

    # --- tasks -----------------------------------------------------------------------------
    def find_vma(self, mm: MmStruct, addr: int) -> VmAreaStruct | None:
        return V.find_vma(mm, addr)

    def task_of_mm(self, mm: MmStruct) -> Task:
        for t in self.tasks.values():
            if t.mm is mm:
                return t
        return Task(0, mm.owner, mm, 0, None)

    def task(self, name: str) -> Task:
        t = self.tasks.get(name)
        if t is None or not t.alive:
            raise Errno("ESRCH", f"no process {name!r}")
        return t

    def spawn_task(self, name: str, cpu: int | None = None, mm: MmStruct | None = None,
                   memcg: Any = None) -> Task:
        self._pid += 1
        if mm is None:
            mm = MmStruct(self, name)
        mm.id = self._pid
        t = Task(self._pid, name, mm, (cpu if cpu is not None else 0) % self.cpus, memcg)
        mm.memcg = memcg
        self.tasks[name] = t
        return t

    def sys_fork(self, parent: Task, child_name: str) -> Task:
        """dup_mmap(): VM_DONTCOPY vmas are skipped; anon pages become CoW-shared."""
        pm = parent.mm
        child = self.spawn_task(child_name, cpu=parent.cpu, memcg=parent.memcg)
        cm = child.mm
        for v in pm.vmas:
            if v.vm_flags & VM_DONTCOPY:
                continue
            nv = VmAreaStruct(cm, v.vm_start, v.vm_end, v.vm_pgoff, v.vm_flags)  # vm_area_dup()
            V.vma_insert(self, cm, nv)
            self.rmap.anon_vma_fork(nv, v)
            if not v.vm_flags & VM_WIPEONFORK:
                memory.copy_pte_range(self, nv, v)
        self.ksm.ksm_fork(cm, pm)
        child.names = dict(parent.names)
        self.tick(self.costs.syscall * 20)
        return child

    def sys_exit(self, task: Task) -> None:
        mm = task.mm
        mm.mm_users = 0
        self.ksm.ksm_exit(mm)  # __ksm_exit() runs before exit_mmap() (mmput)
        mmap.exit_mmap(self, mm)
        task.alive = False
        self.tick(self.costs.syscall * 10)

    # --- user memory access --------------------------------------------------------------
    def user_write(self, task: Task, addr: int, length: int, op: memory.ContentOp) -> None:
        memory.handle_mm_fault_range(self, task, addr, length, write=True, op=op)

    def user_read(self, task: Task, addr: int, length: int) -> None:
        memory.handle_mm_fault_range(self, task, addr, length, write=False, op=None)

    def memset_op(self, value: int) -> memory.ContentOp:
        c = C.filled(value)
        return lambda _c, _s, _n: (c, 0)

    def touch_op(self, value: int | None) -> memory.ContentOp:
        if value is not None:
            return lambda c, s, _n: (C.write_byte(c, 0, value), s)

        def unique(c: Any, s: int, n: int) -> tuple[Any, int]:
            stamp = self.content_stamp
            self.content_stamp += n
            return C.stamped(c, stamp), 1

        return unique

    # --- /sys and prctl -------------------------------------------------------------------
    def sysfs_write(self, path: str, value: str) -> None:
        if path.startswith("/sys/kernel/mm/ksm/"):
            self.ksm.write_knob(path.rsplit("/", 1)[1], str(value))
        elif path == "/sys/kernel/mm/lru_gen/enabled":
            # mm/vmscan.c store_enabled(): "n..." none, "y..." every capability, else
            # kstrtouint(buf, 0); bit 0 (LRU_GEN_CORE) switches the multi-gen LRU
            v = str(value)
            caps = 0 if v[:1] in ("n", "N") else UINT_MAX if v[:1] in ("y", "Y") \
                else kstrtouint(v, 0)
            if caps is None:
                raise Errno("EINVAL", f"lru_gen/enabled: {value!r}")
            self.set_lru_gen(bool(caps & 1))
        else:
            raise Errno("ENOENT", f"{path}: no such file")
        self.tick(self.costs.syscall)

    def prctl(self, task: Task, option: str, value: int) -> int:
        if option in ("PR_SET_MEMORY_MERGE", "PR_GET_MEMORY_MERGE") and \
                not self.switches.ksm_prctl_merge_any:
            raise Errno("EINVAL", f"{option} is not known to this kernel (v6.4+)",
                        unsupported=True)
        if option == "PR_SET_MEMORY_MERGE":
            if value not in (0, 1):
                raise Errno("EINVAL", "PR_SET_MEMORY_MERGE takes 0 or 1")
            if value:
                self.ksm.enable_merge_any(task.mm)
            else:
                self.ksm.disable_merge_any(task.mm)
            return 0
        if option == "PR_GET_MEMORY_MERGE":
            from ksmrepro.mm.mm_types import MMF_VM_MERGE_ANY
            return int(bool(task.mm.flags & MMF_VM_MERGE_ANY))
        raise Errno("EINVAL", f"{option} not supported")

    # --- observation ------------------------------------------------------------------------
    def smaps_ksm(self, mm: MmStruct) -> int:
        """Sum of smaps ``KSM:`` (bytes): present ptes of KSM folios and KSM zero pages."""
        total = 0
        seen: set[int] = set()
        for e in mm.pt.values():
            if isinstance(e, PteRun):
                if id(e) not in seen:
                    seen.add(id(e))
                    if folio_test_ksm(e.folio):
                        total += e.folio.nr * PAGE_SIZE
            elif isinstance(e, ZeroPte) and e.dirty:
                total += PAGE_SIZE
        return total

    def counters(self, task: Task | None, want: Collection[str] | None = None) -> dict[str, int]:
        """Every observable counter (scenario-format.md); those that walk the page tables
        (``smaps_ksm``) only when ``want`` is None or names them."""
        c = self.ksm.counters()
        c.update({k2: (int(v) if str(v).lstrip("-").isdigit() else 0)
                  for k2, v in self.ksm.knobs.items() if not k2.startswith("advisor_mode")})
        inactive, active = self.lru_sizes()
        c.update({
            "nr_free_pages": self.nr_free,
            "nr_inactive_anon": inactive,
            "nr_active_anon": active,
            "nr_swap_used": self.swapfile.inuse_pages,
            "pswpin": self.vmstat["pswpin"],
            "pswpout": self.vmstat["pswpout"],
            "cow_ksm": self.vmstat["cow_ksm"],
            "ksm_swpin_copy": self.vmstat["ksm_swpin_copy"],
            "workingset_activate_anon": self.vmstat["workingset_activate_anon"],
            "memory_current": (self.totalram - self.nr_free) * PAGE_SIZE,
        })
        if task is not None:
            cg = task.memcg or self.memcg.root
            if task.memcg is not None:
                c["memory_current"] = cg.usage * PAGE_SIZE
            lv = cg.lruvec
            act, inact = self.lru_gen.sizes(lv)
            c["memory_stat_active_anon"] = act * PAGE_SIZE
            c["memory_stat_inactive_anon"] = inact * PAGE_SIZE
            c["memory_stat_anon"] = (act + inact + sum(
                f.nr for b in self.lru_add for f in b if f.memcg is task.memcg)) * PAGE_SIZE
            mm = task.mm
            c.update(self.ksm.ksm_stat(mm))
            # /proc/PID/status reads the mm's counters: without what SPLIT_RSS_COUNTING still
            # holds in the task (v6.1), where get_mm_counter() reads a negative count as 0
            c["rss_anon"] = max(mm.rss_anon - task.rss_pending[0], 0)
            c["swap_ents"] = max(mm.swapents - task.rss_pending[1], 0)
            if want is None or "smaps_ksm" in want:
                c["smaps_ksm"] = self.smaps_ksm(mm)
        return c

    def lru_sizes(self) -> tuple[int, int]:
        """(inactive, active) anon pages over every lruvec; with the multi-gen LRU the two
        youngest generations count as active (lru_gen_is_active())."""
        inactive = active = 0
        for lv in self.all_lruvecs():
            a, i = self.lru_gen.sizes(lv) if self.lru_gen_enabled() else (
                lv.lists[1].pages, lv.lists[0].pages)
            inactive += i
            active += a
        inactive += sum(f.nr for b in self.lru_add for f in b)
        return inactive, active

    # --- state dumps ------------------------------------------------------------------------
    def dump(self, task: Task, what: tuple[str, ...]) -> dict[str, Any]:
        mm = task.mm
        out: dict[str, Any] = {"proc": task.name, "pid": task.pid}
        if "maps" in what:
            out["maps"] = [{
                "vm_start": f"{v.vm_start:#x}", "vm_end": f"{v.vm_end:#x}",
                "vm_pgoff": f"{v.vm_pgoff:#x}",
                "vm_flags": " ".join(n for b, n in sorted(VM_FLAG_NAMES.items())
                                     if v.vm_flags & b),
                "anon_vma": repr(v.anon_vma) if v.anon_vma else None,
                "avc": [f"{a.anon_vma}[{a.start_pgoff:#x}, {a.last_pgoff:#x}]"
                        for a in v.anon_vma_chain],
            } for v in mm.vmas]
        if "pages" in what:
            out["pages"] = self._dump_pages(mm)
        if "ksm" in what:
            out["ksm"] = self._dump_ksm()
        return out

    def _dump_pages(self, mm: MmStruct, limit: int = 256) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for v in mm.vmas:
            for vpn in range(v.vm_start >> PAGE_SHIFT, v.vm_end >> PAGE_SHIFT):
                if len(rows) >= limit:
                    return rows
                e = mm.pt.get(vpn)
                addr = f"{vpn << PAGE_SHIFT:#x}"
                if e is None:
                    continue
                if isinstance(e, PteRun):
                    f = e.folio
                    i = vpn - e.vpn
                    rows.append({
                        "addr": addr, "pte": "present",
                        "pte_bits": "".join(b for b, on in (("y", e.young), ("d", e.dirty),
                                                           ("w", e.write)) if on) or "-",
                        "pfn": f"{f.pfn + i:#x}", "index": f"{f.index + i:#x}",
                        "linear_page_index": f"{linear_page_index(v, vpn << PAGE_SHIFT):#x}",
                        "mapping": (f"stable_node#{f.mapping.id}" if isinstance(
                            f.mapping, KsmStableNode) else repr(f.mapping)),
                        "ksm": folio_test_ksm(f), "mapcount": f.mapcount,
                        "flags": ",".join(pg_names(f.flags)),
                        "lru": (f"gen {f.gen}" if f.lru >= LIST_BASE else
                                LRU_NAMES.get(f.lru, "batch" if f.cpu >= 0 else "none")),
                        "content": C.describe(f.page_content(i)),
                    })
                elif isinstance(e, SwapRun):
                    rows.append({"addr": addr, "pte": "swap",
                                 "slot": e.slot + vpn - e.vpn,
                                 "swapcache": (e.slot + vpn - e.vpn) in self.swapcache})
                else:
                    rows.append({"addr": addr, "pte": "ksm-zero-page" if e.dirty else "zero-page"})
        return rows

    def _dump_ksm(self) -> dict[str, Any]:
        k = self.ksm

        def node(n: KsmStableNode) -> dict[str, Any]:
            d: dict[str, Any] = {"node": n.id}
            if n.chain:
                d["chain"] = [node(x) for x in n.dups]
                return d
            f = n.kfolio
            d.update({"kpfn": f"{f.pfn:#x}" if f else None,
                      "stale": f is None or f.mapping is not n,
                      "rmap_hlist_len": n.rmap_hlist_len,
                      "hlist": [{"mm": i.mm.owner, "address": f"{i.address:#x}",
                                 "anon_vma": repr(i.anon_vma),
                                 "linear_page_index": None if i.linear_page_index is None
                                 else f"{i.linear_page_index:#x}"} for i in n.hlist]})
            return d

        return {
            "stable_tree": [node(n) for n in k.stable_tree],
            "unstable_tree": [{"mm": i.mm.owner, "address": f"{i.address:#x}"}
                              for i in k.unstable_tree],
            "mm_slots": [{"mm": s.mm.owner, "rmap_items": [
                {"address": f"{i.address:#x}",
                 "state": "stable" if i.flags & 0x200 else "unstable" if i.flags & 0x100
                 else "volatile", "oldchecksum": f"{i.oldchecksum:#010x}", "age": i.age}
                for i in s.rmap_list]} for s in k.mm_slots],
            "scan": {"mm": k.scan_slot.mm.owner if k.scan_slot else "ksm_mm_head",
                     "address": f"{k.scan_address:#x}", "seqnr": k.seqnr},
        }

    # --- invariants -------------------------------------------------------------------------
    def check_invariants(self) -> None:
        """VM_BUG_ON()s the simulation keeps after every step."""
        k = self.ksm

        def bug(msg: str) -> None:
            raise KernelBug(f"VM_BUG_ON: {msg}")

        shared = sharing = 0
        for n in k.stable_tree:
            for d in (n.dups if n.chain else [n]):
                if d.rmap_hlist_len != len(d.hlist):
                    bug(f"{d}: rmap_hlist_len {d.rmap_hlist_len} != hlist length {len(d.hlist)}")
                if d.hlist:
                    shared += 1
                    sharing += len(d.hlist) - 1
        if (shared, sharing) != (k.pages_shared, k.pages_sharing):
            bug(f"pages_shared/pages_sharing {k.pages_shared}/{k.pages_sharing} but the stable "
                f"tree holds {shared}/{sharing}")
        items = sum(len(s.rmap_list) for s in k.mm_slots)
        if items != k.ksm_rmap_items:
            bug(f"ksm_rmap_items {k.ksm_rmap_items} but the mm_slots hold {items}")
        for t in self.tasks.values():
            if not t.alive:
                continue
            mm = t.mm
            # every present pte run once, in address order (page-table order); PteRun and
            # Folio hash by identity
            runs = list(dict.fromkeys(e for e in mm.pt.values() if e.__class__ is PteRun))
            folios = dict.fromkeys(p.folio for p in runs)
            listed: set[PteRun] = set()
            for f in folios:
                if f.mapcount != len(f.ptes):
                    bug(f"folio pfn {f.pfn:#x}: mapcount {f.mapcount}, {len(f.ptes)} ptes")
                listed.update(f.ptes)
            if not listed.issuperset(runs):  # each pte run is on its folio's mappings
                bug(f"{mm.owner}: a present pte is missing from its folio's mappings")
            rss = 0
            vmas = mm.vmas  # sorted, as the runs are: walked side by side
            vi, nv = 0, len(mm.vmas)
            for p in runs:
                f = p.folio
                nr = f.nr
                rss += nr
                addr = p.vpn << PAGE_SHIFT
                while vi < nv and vmas[vi].vm_end <= addr:
                    vi += 1
                v = vmas[vi] if vi < nv else None
                if v is None or v.vm_start > addr or addr + nr * PAGE_SIZE > v.vm_end:
                    bug(f"{mm.owner}: pte at {addr:#x} outside any vma")
                elif not folio_test_ksm(f) and f.index != linear_page_index(v, addr):
                    bug(f"{mm.owner}: folio index {f.index:#x} != linear_page_index "
                        f"{linear_page_index(v, addr):#x} at {addr:#x}")
            if rss != mm.rss_anon:
                bug(f"{mm.owner}: MM_ANONPAGES {mm.rss_anon} but {rss} present anon ptes")

    # --- constants --------------------------------------------------------------------------
    @staticmethod
    def prot_bits(names: tuple[str, ...]) -> int:
        p = 0
        for n in names:
            p |= PROT[n]
        return p

    @staticmethod
    def map_bits(names: tuple[str, ...]) -> int:
        p = 0
        for n in names:
            p |= MAP[n]
        return p
