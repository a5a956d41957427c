"""mm/mmap.c: mmap(2) and munmap(2) of private anonymous memory; exit_mmap()."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ksmrepro.mm import vma as V
from ksmrepro.mm.const import (
    MAP,
    MMAP_MIN_ADDR,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    TASK_SIZE,
    VM_ACCOUNT,
    VM_EXEC,
    VM_LOCKED,
    VM_MAYEXEC,
    VM_MAYREAD,
    VM_MAYWRITE,
    VM_NORESERVE,
    VM_READ,
    VM_WRITE,
    Errno,
    page_align,
)
from ksmrepro.mm.mm_types import MmStruct, Task, VmAreaStruct

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel


def calc_vm_prot_bits(prot: int) -> int:
    return ((VM_READ if prot & PROT_READ else 0) | (VM_WRITE if prot & PROT_WRITE else 0)
            | (VM_EXEC if prot & PROT_EXEC else 0))


def get_unmapped_area(mm: MmStruct, length: int, hint: int = 0) -> int:
    """arch_get_unmapped_area_topdown(): the hint if free, else the highest free gap below
    mmap_base.  CUSTOM: no randomisation, no stack guard gap beyond mmap_base."""
    if hint:
        hint = page_align(hint)
        if hint + length <= TASK_SIZE and V.range_is_free(mm, hint, hint + length):
            return hint
    high = mm.mmap_base
    for v in sorted(mm.vmas, key=lambda v: v.vm_start, reverse=True):
        if v.vm_start >= high:
            continue
        if v.vm_end <= high - length:
            return high - length
        high = v.vm_start
    if high - length >= MMAP_MIN_ADDR:
        return high - length
    raise Errno("ENOMEM", "no free address range of that size")


def do_mmap(k: Kernel, task: Task, addr: int, length: int, prot: int, flags: int) -> int:
    """do_mmap() for MAP_PRIVATE|MAP_ANONYMOUS."""
    mm = task.mm
    if length == 0:
        raise Errno("EINVAL", "length is 0")
    length = page_align(length)
    if length > TASK_SIZE:
        raise Errno("ENOMEM", "length exceeds the address space")
    maptype = flags & (MAP["MAP_SHARED"] | MAP["MAP_PRIVATE"])
    if maptype not in (MAP["MAP_SHARED"], MAP["MAP_PRIVATE"]):
        raise Errno("EINVAL", "exactly one of MAP_SHARED and MAP_PRIVATE is required")
    if not flags & MAP["MAP_ANONYMOUS"]:
        raise Errno("EBADF", "file mappings need a file descriptor (only anonymous memory here)")
    if maptype == MAP["MAP_SHARED"]:
        # CUSTOM: shared anonymous memory is shmem, which is not modelled
        raise Errno("EINVAL", "MAP_SHARED|MAP_ANONYMOUS (shmem) is not modelled by ksmrepro")
    fixed = flags & (MAP["MAP_FIXED"] | MAP["MAP_FIXED_NOREPLACE"])
    if fixed:
        if addr & (PAGE_SIZE - 1):
            raise Errno("EINVAL", "MAP_FIXED address is not page aligned")
        if addr + length > TASK_SIZE or addr < MMAP_MIN_ADDR:
            raise Errno("ENOMEM" if addr + length > TASK_SIZE else "EPERM", "address out of range")
        if flags & MAP["MAP_FIXED_NOREPLACE"] and not V.range_is_free(mm, addr, addr + length):
            raise Errno("EEXIST", "MAP_FIXED_NOREPLACE range is already mapped")
        do_munmap(k, mm, addr, length)
    else:
        addr = get_unmapped_area(mm, length, addr)
    vm_flags = calc_vm_prot_bits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
    if prot & PROT_WRITE and not flags & MAP["MAP_NORESERVE"]:
        vm_flags |= VM_ACCOUNT  # accountable_mapping()
    if flags & MAP["MAP_NORESERVE"]:
        vm_flags |= VM_NORESERVE
    if flags & MAP["MAP_LOCKED"]:
        vm_flags |= VM_LOCKED
    end = addr + length
    pgoff = addr >> PAGE_SHIFT  # private anonymous: vm_pgoff = addr >> PAGE_SHIFT
    tmp = VmAreaStruct(mm, addr, end, pgoff, vm_flags)
    k.ksm.ksm_add_vma(tmp)  # ksm_vma_flags(): merge-any mms get VM_MERGEABLE now
    vma = V.vma_merge_new_range(k, mm, addr, end, tmp.vm_flags, None, pgoff)
    if vma is None:
        V.vma_insert(k, mm, tmp)
    k.tick(k.costs.syscall)
    if flags & (MAP["MAP_POPULATE"] | MAP["MAP_LOCKED"]):
        k.memory.handle_mm_fault_range(k, task, addr, length, write=bool(prot & PROT_WRITE),
                                       op=None)
    return addr


def do_munmap(k: Kernel, mm: MmStruct, start: int, length: int) -> None:
    """do_vmi_munmap(): split at the edges, zap, unlink.  KSM rmap_items are left for ksmd."""
    if start & (PAGE_SIZE - 1) or start > TASK_SIZE or length > TASK_SIZE - start:
        raise Errno("EINVAL", "munmap address is not page aligned or out of range")
    length = page_align(length)
    if length == 0:
        raise Errno("EINVAL", "length is 0")
    end = start + length
    vmas = V.vma_modify_range(k, mm, start, end)
    if vmas:  # vms_clear_ptes() (unmap_region() in v6.1): lru_add_drain() first
        k.swap.lru_add_drain(k.task_of_mm(mm).cpu)
    for v in vmas:
        k.memory.zap_pte_range(k, mm, v.vm_start >> PAGE_SHIFT, v.vm_end >> PAGE_SHIFT)
        k.rmap.unlink_anon_vmas(v)
        mm.vmas.remove(v)
    k.tick(k.costs.syscall)


def exit_mmap(k: Kernel, mm: MmStruct) -> None:
    """exit_mmap(): the whole address space goes, after lru_add_drain() of this CPU."""
    if mm.vmas:
        k.swap.lru_add_drain(k.task_of_mm(mm).cpu)
    for v in list(mm.vmas):
        k.memory.zap_pte_range(k, mm, v.vm_start >> PAGE_SHIFT, v.vm_end >> PAGE_SHIFT)
        k.rmap.unlink_anon_vmas(v)
    mm.vmas = []
