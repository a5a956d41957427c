from ksmrepro.models.base import Patch

PATCH = Patch(
    name="ksm-pte-mkold",
    title="ksm: pte_mkold without folio_mark_accessed (Hugh Dickins' local testing patch)",
    reference=(
        "Hugh Dickins, Re: [PATCH v3 2/2] ksm: Optimize rmap_walk_ksm..., LKML 2026-04-06: "
        "\"I had to apply that pte_mkold-without-folio_mark_accessed patch to the kernel's "
        "mm/ksm.c\" (text not published; modelled from its name)"
    ),
    function="replace_page, try_to_merge_one_page",
    explanation=(
        "Stock KSM gives a freshly merged folio every sign of recent use: replace_page() installs "
        "mk_pte(kpage, vm_page_prot), young on x86, and try_to_merge_one_page() calls "
        "folio_mark_accessed() on the folio that becomes KSM.  Under the classic LRU that "
        "ACTIVATEs the folio at its first reclaim encounter and strands it on the active list, so "
        "no testcase can swap it out.  The patch makes the new pte old and drops the "
        "folio_mark_accessed(), so reclaim judges the KSM folio by real accesses only."
    ),
    sets={"ksm_replace_pte_young": False, "ksm_kpage_mark_accessed": False},
)
