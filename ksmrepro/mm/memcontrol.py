"""mm/memcontrol.c (cgroup v2 memory controller): charging, per-memcg lruvecs,
memory.max and memory.reclaim.

Reference: v6.1 and v7.0 memory_reclaim() / try_charge_memcg(), whose decisions agree for
what is modelled.  Not modelled: memory.low/min protection, memory.high throttling, the
swap controller, socket and kernel-memory charges, moving charges on attach (cgroup v2
never moves them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ksmrepro.mm.const import PAGE_SIZE, SWAP_CLUSTER_MAX, Errno
from ksmrepro.mm.swap import Lruvec

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel
    from ksmrepro.mm.mm_types import Folio

MAX_RECLAIM_RETRIES = 16


class MemCgroup:
    """``struct mem_cgroup``: one lruvec per memcg (one NUMA node here)."""

    def __init__(self, name: str, parent: MemCgroup | None, memory_max: int | None) -> None:
        self.name = name
        self.parent = parent
        self.memory_max = memory_max  # pages; None: "max"
        self.lruvec = Lruvec(name)
        self.usage = 0  # pages charged (page_counter)
        self.children: list[MemCgroup] = []
        if parent is not None:
            parent.children.append(self)

    def path(self) -> str:
        return "/" if self.parent is None else f"/sys/fs/cgroup/{self.name}"

    def subtree(self) -> list[MemCgroup]:
        """mem_cgroup_iter() order: the memcg, then its descendants."""
        out = [self]
        for c in self.children:
            out.extend(c.subtree())
        return out

    def __repr__(self) -> str:
        return f"<memcg {self.name}>"


class MemControl:
    """The memory controller of one simulated machine."""

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.root = MemCgroup("root", None, None)
        self.cgroups: dict[str, MemCgroup] = {}

    def create(self, name: str, memory_max: int | None) -> MemCgroup:
        """mkdir /sys/fs/cgroup/NAME (and an optional echo > memory.max)."""
        if name in self.cgroups:
            raise Errno("EEXIST", f"/sys/fs/cgroup/{name} exists")
        cg = MemCgroup(name, self.root, None if memory_max is None
                       else max(memory_max // PAGE_SIZE, 0))
        self.cgroups[name] = cg
        if self.k.lru_gen_enabled():
            from ksmrepro.mm.lru_gen import LruGenFolio
            cg.lruvec.lrugen = LruGenFolio(cg.lruvec)
        return cg

    def get(self, name: str) -> MemCgroup:
        try:
            return self.cgroups[name]
        except KeyError:
            raise Errno("ENOENT", f"/sys/fs/cgroup/{name}: no such cgroup") from None

    def of(self, memcg: MemCgroup | None) -> MemCgroup:
        return memcg if memcg is not None else self.root

    def all(self) -> list[MemCgroup]:
        return self.root.subtree()

    # --- charging ----------------------------------------------------------------------
    def try_charge(self, memcg: MemCgroup | None, nr: int, cpu: int) -> None:
        """try_charge_memcg(): over memory.max, reclaim from the memcg first; OOM if that
        cannot make room (the caller kills the task)."""
        cg = self.of(memcg)
        c: MemCgroup | None = cg
        while c is not None:
            if c.memory_max is not None and c.usage + nr > c.memory_max:
                retries = MAX_RECLAIM_RETRIES
                while c.usage + nr > c.memory_max and retries:
                    got = self.k.vmscan.try_to_free_pages(
                        c.usage + nr - c.memory_max, cpu, [x.lruvec for x in c.subtree()],
                        target_memcg=c)
                    retries = retries - 1 if not got else retries
                if c.usage + nr > c.memory_max:
                    from ksmrepro.mm.kernel import OutOfMemory
                    raise OutOfMemory(f"memory cgroup {c.name} out of memory "
                                      f"(memory.max {c.memory_max * PAGE_SIZE})")
            c = c.parent
        c = cg
        while c is not None:
            c.usage += nr
            c = c.parent

    def chargeable(self, memcg: MemCgroup | None, nr: int, cpu: int) -> int:
        """How many of ``nr`` pages can be charged now (at least 1): SIM-ONLY, so that a run
        of folios is charged in the pieces that fit under memory.max, as folio-by-folio
        charging would, reclaiming within the memcg when even one does not fit."""
        c: MemCgroup | None = self.of(memcg)
        fit = nr
        while c is not None:
            if c.memory_max is not None:
                if c.usage + 1 > c.memory_max:
                    self.try_charge(c, 1, cpu)  # reclaims (or OOMs) ...
                    self.uncharge_pages(c, 1)  # ... only to make room: give it back
                fit = min(fit, max(c.memory_max - c.usage, 1))
            c = c.parent
        return fit

    def uncharge_pages(self, memcg: MemCgroup, nr: int) -> None:
        c: MemCgroup | None = memcg
        while c is not None:
            c.usage -= nr
            c = c.parent

    def uncharge(self, f: Folio) -> None:
        c: MemCgroup | None = self.of(f.memcg)
        while c is not None:
            c.usage -= f.nr
            c = c.parent

    # --- memory.reclaim ----------------------------------------------------------------
    def memory_reclaim(self, name: str, amount: int, cpu: int) -> int:
        """memory_reclaim(): proactive reclaim of the memcg; EAGAIN when it falls short after
        MAX_RECLAIM_RETRIES fruitless rounds.  Returns pages reclaimed."""
        cg = self.get(name)
        nr_to_reclaim = amount // PAGE_SIZE
        nr_reclaimed = 0
        retries = MAX_RECLAIM_RETRIES
        self.k.swap.lru_add_drain_all()
        while nr_reclaimed < nr_to_reclaim:
            got = self.k.vmscan.try_to_free_pages(
                max(nr_to_reclaim - nr_reclaimed, SWAP_CLUSTER_MAX), cpu,
                [x.lruvec for x in cg.subtree()], proactive=True, target_memcg=cg)
            if not got:
                if not retries:
                    raise Errno("EAGAIN", f"memory.reclaim: {nr_reclaimed * PAGE_SIZE} of "
                                f"{amount} bytes reclaimed")
                retries -= 1
            nr_reclaimed += got
            if self.k.tracing:
                self.k.trace("memory_reclaim", f"{name}: try_to_free_mem_cgroup_pages() reclaimed "
                             f"{got} page(s), {nr_reclaimed} of {nr_to_reclaim} so far, "
                             f"{retries} fruitless retries left", reclaimed=got, retries=retries)
            # Between two tries the writer can be preempted (signal_pending(), the reclaim's
            # cond_resched()), and ksmd or kswapd, due meanwhile on the other CPU, run now
            # (CUSTOM: kernel threads interleave with a long system call at this granularity,
            # as they do with a pressure process every PRESSURE_CHUNK pages).
            self.k.flush()
        return nr_reclaimed
