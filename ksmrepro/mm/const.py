"""Constants from include/uapi and include/linux/mm.h, under the kernel's names."""

from __future__ import annotations

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = ~(PAGE_SIZE - 1)
ULONG_MAX = (1 << 64) - 1
SWAP_CLUSTER_MAX = 32
DEF_PRIORITY = 12
HPAGE_PMD_NR = 512

# x86-64 user address space (4-level paging), mmap_base below a 128M stack gap.
TASK_SIZE = 0x7FFFFFFFF000
MMAP_BASE = 0x7F0000000000  # CUSTOM: no randomisation (ASLR off), fixed base
MMAP_MIN_ADDR = 0x10000

# vm_flags (include/linux/mm.h)
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_MAYREAD = 0x10
VM_MAYWRITE = 0x20
VM_MAYEXEC = 0x40
VM_MAYSHARE = 0x80
VM_GROWSDOWN = 0x100
VM_LOCKED = 0x2000
VM_DONTCOPY = 0x20000
VM_DONTEXPAND = 0x40000
VM_ACCOUNT = 0x100000
VM_NORESERVE = 0x200000
VM_HUGETLB = 0x400000
VM_HUGEPAGE = 0x20000000
VM_NOHUGEPAGE = 0x40000000
VM_MERGEABLE = 0x80000000
VM_WIPEONFORK = 0x2000000
VM_DONTDUMP = 0x4000000
VM_PFNMAP = 0x400
VM_IO = 0x4000
VM_MIXEDMAP = 0x10000000

VM_FLAG_NAMES = {  # /proc/PID/smaps VmFlags mnemonics (fs/proc/task_mmu.c show_smap_vma_flags)
    VM_READ: "rd", VM_WRITE: "wr", VM_EXEC: "ex", VM_SHARED: "sh", VM_MAYREAD: "mr",
    VM_MAYWRITE: "mw", VM_MAYEXEC: "me", VM_MAYSHARE: "ms", VM_GROWSDOWN: "gd",
    VM_LOCKED: "lo", VM_DONTCOPY: "dc", VM_DONTEXPAND: "de", VM_ACCOUNT: "ac",
    VM_NORESERVE: "nr", VM_HUGEPAGE: "hg", VM_NOHUGEPAGE: "nh", VM_MERGEABLE: "mg",
    VM_WIPEONFORK: "wf", VM_DONTDUMP: "dd",
}

PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4
PROT = {"PROT_NONE": 0, "PROT_READ": 1, "PROT_WRITE": 2, "PROT_EXEC": 4}
MAP = {
    "MAP_SHARED": 0x01, "MAP_PRIVATE": 0x02, "MAP_FIXED": 0x10, "MAP_ANONYMOUS": 0x20,
    "MAP_GROWSDOWN": 0x100, "MAP_LOCKED": 0x2000, "MAP_NORESERVE": 0x4000,
    "MAP_POPULATE": 0x8000, "MAP_FIXED_NOREPLACE": 0x100000,
}
MREMAP = {"MREMAP_MAYMOVE": 1, "MREMAP_FIXED": 2, "MREMAP_DONTUNMAP": 4}

# fault flags (include/linux/mm_types.h enum fault_flag)
FAULT_FLAG_WRITE = 0x1
FAULT_FLAG_REMOTE = 0x80
FAULT_FLAG_UNSHARE = 0x400

# folio flags (include/linux/page-flags.h), as bits of Folio.flags
PG_locked = 1 << 0
PG_referenced = 1 << 1
PG_dirty = 1 << 2
PG_lru = 1 << 3
PG_active = 1 << 4
PG_workingset = 1 << 5
PG_swapbacked = 1 << 6
PG_swapcache = 1 << 7
PG_unevictable = 1 << 8
PG_mlocked = 1 << 9
PG_anon_exclusive = 1 << 10  # PageAnonExclusive (per page; uniform over a folio run)
PG_idle = 1 << 11
PG_reclaim = 1 << 12  # written back for reclaim: rotate to the tail when the write ends

PG_NAMES = (
    (PG_locked, "locked"), (PG_referenced, "referenced"), (PG_dirty, "dirty"), (PG_lru, "lru"),
    (PG_active, "active"), (PG_workingset, "workingset"), (PG_swapbacked, "swapbacked"),
    (PG_swapcache, "swapcache"), (PG_unevictable, "unevictable"), (PG_mlocked, "mlocked"),
    (PG_anon_exclusive, "anon_exclusive"), (PG_reclaim, "reclaim"),
)


def pg_names(flags: int) -> list[str]:
    return [n for b, n in PG_NAMES if flags & b]


class Errno(Exception):
    """A syscall's failure: ``-EINVAL`` and friends.  ``name`` is the errno's name.

    ``unsupported`` marks a failure that only says the modelled kernel lacks the call or knob
    (a newer prctl option, a sysfs file it does not have): the scenario cannot run there."""

    def __init__(self, name: str, message: str = "", *, unsupported: bool = False) -> None:
        self.name = name
        self.message = message
        self.unsupported = unsupported
        super().__init__(f"{name}: {message}" if message else name)


class SigSegv(Exception):
    """A user access the kernel answers with SIGSEGV (``force_sig_fault``)."""

    def __init__(self, addr: int, message: str = "") -> None:
        self.addr = addr
        self.message = message or f"SIGSEGV at {addr:#x}"
        super().__init__(self.message)


def VM_BUG_ON(cond: object, what: str = "") -> None:  # noqa: N802 - the kernel's name
    """include/linux/mmdebug.h VM_BUG_ON(): a broken kernel invariant is a bug in ksmrepro
    (KernelBug, exit status 3), never a Python AssertionError (which -O would strip)."""
    if cond:
        from ksmrepro.errors import KernelBug

        raise KernelBug(f"VM_BUG_ON: {what}" if what else "VM_BUG_ON")


def page_align(n: int) -> int:
    return (n + PAGE_SIZE - 1) & PAGE_MASK
