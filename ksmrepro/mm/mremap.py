"""mm/mremap.c: shrink, grow in place, and move (MREMAP_MAYMOVE/FIXED/DONTUNMAP).

On a move, copy_vma() keeps the *old* linear pgoff: a moved vma's vm_pgoff no longer
equals vm_start >> PAGE_SHIFT, and its folios keep their index.  prep_move_vma() first
asks KSM to unmerge the source range, leaving VM_MERGEABLE set on the vma (commit
1ff829957316 "ksm: prevent mremap move poisoning").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ksmrepro.errors import KernelBug
from ksmrepro.mm import vma as V
from ksmrepro.mm.const import MREMAP, PAGE_SHIFT, PAGE_SIZE, TASK_SIZE, Errno, page_align
from ksmrepro.mm.mm_types import PteRun, SwapRun, Task, VmAreaStruct

if TYPE_CHECKING:
    from ksmrepro.mm.kernel import Kernel

MAYMOVE, FIXED, DONTUNMAP = MREMAP["MREMAP_MAYMOVE"], MREMAP["MREMAP_FIXED"], MREMAP[
    "MREMAP_DONTUNMAP"]


def sys_mremap(k: Kernel, task: Task, addr: int, old_len: int, new_len: int, flags: int,
               new_addr: int) -> int:
    """mremap(2): returns the new address."""
    mm = task.mm
    if flags & ~(MAYMOVE | FIXED | DONTUNMAP):
        raise Errno("EINVAL", "unknown mremap flags")
    if flags & FIXED and not flags & MAYMOVE:
        raise Errno("EINVAL", "MREMAP_FIXED requires MREMAP_MAYMOVE")
    if flags & DONTUNMAP and (not flags & MAYMOVE or old_len != new_len):
        raise Errno("EINVAL", "MREMAP_DONTUNMAP requires MREMAP_MAYMOVE and old_size == new_size")
    if addr & (PAGE_SIZE - 1):
        raise Errno("EINVAL", "old_address is not page aligned")
    old_len, new_len = page_align(old_len), page_align(new_len)
    if new_len == 0:
        raise Errno("EINVAL", "new_size is 0")
    k.tick(k.costs.syscall)
    if flags & FIXED:
        return mremap_to(k, task, addr, old_len, new_addr, new_len, flags)
    vma = V.vma_lookup(mm, addr)
    if vma is None:
        raise Errno("EFAULT", f"no mapping at {addr:#x}")
    if old_len > vma.vm_end - addr:
        raise Errno("EFAULT", "old range crosses the end of its mapping")
    if flags & DONTUNMAP:
        new = k.mmap.get_unmapped_area(mm, new_len)
        return move_vma(k, task, vma, addr, old_len, new_len, new, flags)
    if new_len <= old_len:  # shrink
        if new_len < old_len:
            k.mmap.do_munmap(k, mm, addr + new_len, old_len - new_len)
        return addr
    # grow: in place if this is the vma's end and the space above is free
    if addr + old_len == vma.vm_end and V.range_is_free(mm, vma.vm_end, addr + new_len) \
            and addr + new_len <= TASK_SIZE:
        vma.vm_end = addr + new_len  # vma_expand(): same pgoff, same anon_vma
        return addr
    if not flags & MAYMOVE:
        raise Errno("ENOMEM", "cannot grow in place and MREMAP_MAYMOVE not given")
    new = k.mmap.get_unmapped_area(mm, new_len)
    return move_vma(k, task, vma, addr, old_len, new_len, new, flags)


def mremap_to(k: Kernel, task: Task, addr: int, old_len: int, new_addr: int, new_len: int,
              flags: int) -> int:
    """mremap_to(): the target is unmapped first, then the vma is looked up again."""
    mm = task.mm
    if new_addr & (PAGE_SIZE - 1):
        raise Errno("EINVAL", "new_address is not page aligned")
    if new_len > TASK_SIZE or new_addr > TASK_SIZE - new_len:
        raise Errno("EINVAL", "new range out of the address space")
    if addr < new_addr + new_len and new_addr < addr + old_len:
        raise Errno("EINVAL", "old and new ranges overlap")
    k.mmap.do_munmap(k, mm, new_addr, new_len)
    if old_len > new_len:
        k.mmap.do_munmap(k, mm, addr + new_len, old_len - new_len)
        old_len = new_len
    vma = V.vma_lookup(mm, addr)
    if vma is None:
        raise Errno("EFAULT", f"no mapping at {addr:#x}")
    if old_len > vma.vm_end - addr:
        raise Errno("EFAULT", "old range crosses the end of its mapping")
    return move_vma(k, task, vma, addr, old_len, new_len, new_addr, flags)


def copy_vma(k: Kernel, vma: VmAreaStruct, addr: int, length: int, pgoff: int) -> VmAreaStruct:
    """copy_vma(): a never-faulted anon vma is given pgoff ``addr >> PAGE_SHIFT``; otherwise
    the old linear pgoff stays.  Merges with the destination's neighbours if it can."""
    mm = vma.vm_mm
    if vma.anon_vma is None:
        pgoff = addr >> PAGE_SHIFT
    merged = V.vma_merge_new_range(k, mm, addr, addr + length, vma.vm_flags, vma.anon_vma, pgoff)
    if merged is not None:
        if merged.anon_vma is None and vma.anon_vma is not None:
            k.rmap.anon_vma_clone(merged, vma)
        return merged
    new = VmAreaStruct(mm, addr, addr + length, pgoff, vma.vm_flags)  # vm_area_dup()
    if vma.anon_vma is not None:
        k.rmap.anon_vma_clone(new, vma)
    V.vma_insert(k, mm, new)
    return new


def move_page_tables(k: Kernel, mm, old: int, new: int, length: int) -> None:  # noqa: ANN001
    """move_page_tables() / move_ptes(): pte values move; folio index and mapping do not."""
    v0, n = old >> PAGE_SHIFT, length >> PAGE_SHIFT
    delta = (new - old) >> PAGE_SHIFT
    V._split_runs_at(k, mm, v0)
    V._split_runs_at(k, mm, v0 + n)
    pt = mm.pt
    moved = pt.items_in(v0, v0 + n)
    pt.clear_range(v0, v0 + n)
    shifted: set[int] = set()
    for _, e in moved:  # a run object is shared by its pages: shift it once
        if isinstance(e, (PteRun, SwapRun)) and id(e) not in shifted:
            e.vpn += delta
            shifted.add(id(e))
    for v, e in moved:
        pt[v + delta] = e
    k.tick(k.costs.zap * n)


def move_vma(k: Kernel, task: Task, vma: VmAreaStruct, old_addr: int, old_len: int,
             new_len: int, new_addr: int, flags: int) -> int:
    """move_vma(): prep_move_vma, copy_vma_and_data, unmap_source_vma."""
    mm = vma.vm_mm
    k.first_use("move_vma")
    # prep_move_vma(): unmerge KSM pages in the source range; the dummy flags absorb the
    # VM_MERGEABLE clearing, so the vma keeps it and the moved pages can merge again.
    dummy = vma.vm_flags
    k.ksm.ksm_madvise(vma, old_addr, old_addr + old_len, "MADV_UNMERGEABLE", dummy)
    src = V.vma_lookup(mm, old_addr)  # break_ksm does not change vmas; look again anyway
    if src is None:
        raise KernelBug(f"VM_BUG_ON: move_vma: no vma at {old_addr:#x} after unmerging")
    vma = src
    new_pgoff = vma.vm_pgoff + ((old_addr - vma.vm_start) >> PAGE_SHIFT)
    new_vma = copy_vma(k, vma, new_addr, new_len, new_pgoff)
    move_page_tables(k, mm, old_addr, new_addr, old_len)
    if k.tracing:
        k.trace("move_vma", f"[{old_addr:#x}, {old_addr + old_len:#x}) -> [{new_addr:#x}, "
                f"{new_addr + new_len:#x}) vm_pgoff {new_vma.vm_pgoff:#x} (new_addr >> "
                f"PAGE_SHIFT would be {new_addr >> PAGE_SHIFT:#x})", pgoff=new_vma.vm_pgoff)
    if not flags & DONTUNMAP:
        k.mmap.do_munmap(k, mm, old_addr, old_len)  # unmap_source_vma()
    return new_addr
