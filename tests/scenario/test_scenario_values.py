"""ksmrepro.scenario.values: every value form, the constant tables, and pattern/parser agreement."""

import re

import pytest

from ksmrepro.scenario import values as V
from ksmrepro.scenario.steps import AddrExpr, Comparison


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, 0),
        (4096, 4096),
        ("4096", 4096),
        ("0x1000", 4096),
        ("0X1000", 4096),
        ("3 pages", 3 * 4096),
        ("1 page", 4096),
        ("2pages", 8192),
        ("0x10 pages", 16 * 4096),
        ("512K", 512 * 1024),
        ("64 K", 64 * 1024),
        ("2M", 2 << 20),
        ("1G", 1 << 30),
        ("1g", 1 << 30),
        ("010", 10),  # decimal, not octal
        ("  3 pages ", 3 * 4096),
    ],
)
def test_parse_size(text, expected):
    assert V.parse_size(text) == expected


@pytest.mark.parametrize(
    "text", ["3 pagez", "-1", -1, "1.5M", "", "K", "1T", "3 pages 2", True, 1.5, None, [1]]
)
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="size"):
        V.parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("base", AddrExpr("base", 0)),
        ("base + 1 page", AddrExpr("base", 4096)),
        ("base + 2 pages", AddrExpr("base", 8192)),
        ("base2 - 64K", AddrExpr("base2", -65536)),
        ("base2-64K", AddrExpr("base2", -65536)),
        ("b+1page+64K", AddrExpr("b", 4096 + 65536)),
        ("_x - 1 + 0x10", AddrExpr("_x", 15)),
        ("0x7f0000000000", AddrExpr(None, 0x7F0000000000)),
        ("0x1000 + 1 page", AddrExpr(None, 0x2000)),
        ("4096", AddrExpr(None, 4096)),
        (4096, AddrExpr(None, 4096)),
        (0, AddrExpr(None, 0)),
    ],
)
def test_parse_addr(text, expected):
    assert V.parse_addr(text) == expected


@pytest.mark.parametrize(
    "text", ["base +", "1base", "base * 2", "base + -1", "a b", -1, "0x1000 - 2 pages", "", 1.0]
)
def test_parse_addr_rejects(text):
    with pytest.raises(ValueError, match="address"):
        V.parse_addr(text)


def test_addr_str_round_trips():
    for text in ("base", "base + 1 page", "base2 - 64K", "0x7f0000000000"):
        a = V.parse_addr(text)
        assert V.parse_addr(str(a)) == a


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1s", 10**9),
        ("20ms", 20 * 10**6),
        ("500us", 500_000),
        ("100ns", 100),
        ("1.5s", 1_500_000_000),
        ("0.5 ms", 500_000),
        (5, 5 * 10**6),  # bare integer: milliseconds
        ("20", 20 * 10**6),
        (0, 0),
    ],
)
def test_parse_duration(text, ns):
    assert V.parse_duration(text) == ns


@pytest.mark.parametrize("text", ["1.5ns", "1h", "-1s", "1.5", -5, "s", True, 0.5])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        V.parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (3, Comparison("==", 3)),
        (-2, Comparison("==", -2)),
        ("7", Comparison("==", 7)),
        (">= 1", Comparison(">=", 1)),
        ("< 10", Comparison("<", 10)),
        ("== 3", Comparison("==", 3)),
        ("!= 0", Comparison("!=", 0)),
        ("<=2", Comparison("<=", 2)),
        ("> 0", Comparison(">", 0)),
        (">= -5", Comparison(">=", -5)),
        ("== 0x10", Comparison("==", 16)),
    ],
)
def test_parse_comparison(text, expected):
    assert V.parse_comparison(text) == expected


@pytest.mark.parametrize("text", ["=> 1", "= 1", ">> 1", "abc", ">=", "", True, None, 1.5])
def test_parse_comparison_rejects(text):
    with pytest.raises(ValueError, match="comparison"):
        V.parse_comparison(text)


def test_comparison_hint_for_single_equals():
    with pytest.raises(ValueError, match=r"did you mean '=='"):
        V.parse_comparison("= 1")


def test_constant_sets_are_the_kernels():
    assert set(V.ADVICE) == set(
        "MADV_NORMAL MADV_RANDOM MADV_SEQUENTIAL MADV_WILLNEED MADV_DONTNEED MADV_FREE "
        "MADV_REMOVE MADV_DONTFORK MADV_DOFORK MADV_MERGEABLE MADV_UNMERGEABLE MADV_HUGEPAGE "
        "MADV_NOHUGEPAGE MADV_DONTDUMP MADV_DODUMP MADV_WIPEONFORK MADV_KEEPONFORK MADV_COLD "
        "MADV_PAGEOUT MADV_POPULATE_READ MADV_POPULATE_WRITE MADV_COLLAPSE".split()
    )
    assert set(V.MREMAP_FLAGS) == {"MREMAP_MAYMOVE", "MREMAP_FIXED", "MREMAP_DONTUNMAP"}
    assert set(V.PROT_FLAGS) == {"PROT_NONE", "PROT_READ", "PROT_WRITE", "PROT_EXEC"}
    assert set(V.MAP_FLAGS) == set(
        "MAP_SHARED MAP_PRIVATE MAP_ANONYMOUS MAP_FIXED MAP_FIXED_NOREPLACE MAP_POPULATE "
        "MAP_NORESERVE MAP_LOCKED MAP_GROWSDOWN".split()
    )
    assert set(V.PRCTL_OPTIONS) == {"PR_SET_MEMORY_MERGE", "PR_GET_MEMORY_MERGE"}
    assert set(V.ERRNOS) == set("EINVAL ENOMEM EFAULT EPERM EBUSY EAGAIN EEXIST EACCES ENOENT".split())
    assert set(V.SIGNALS) == {"SIGSEGV", "SIGBUS"}
    for table in (V.ADVICE, V.MREMAP_FLAGS, V.PROT_FLAGS, V.MAP_FLAGS, V.ERRNOS):
        assert isinstance(table, tuple)
        assert len(set(table)) == len(table)


def test_counters():
    expected = (
        "pages_shared pages_sharing pages_unshared pages_volatile pages_scanned pages_skipped "
        "full_scans stable_node_chains stable_node_dups ksm_zero_pages general_profit run "
        "pages_to_scan sleep_millisecs max_page_sharing use_zero_pages merge_across_nodes "
        "smart_scan ksm_rmap_items ksm_merging_pages ksm_process_profit ksm_merge_any "
        "ksm_mergeable rss_anon swap_ents smaps_ksm nr_free_pages nr_inactive_anon "
        "nr_active_anon nr_swap_used pswpin pswpout cow_ksm ksm_swpin_copy "
        "workingset_activate_anon memory_current ksm_stat_zero_pages memory_stat_anon "
        "memory_stat_active_anon memory_stat_inactive_anon"
    ).split()
    assert set(V.COUNTERS) == set(expected)
    assert all(isinstance(d, str) and d and "\n" not in d for d in V.COUNTERS.values())
    assert V.normalise_counter("memory.current") == "memory_current"
    assert V.normalise_counter("pages_shared") == "pages_shared"
    with pytest.raises(ValueError, match=r"unknown counter 'pages_shard'; did you mean 'pages_shared'\?"):
        V.normalise_counter("pages_shard")


def test_sysfs_paths():
    knobs = (
        "run pages_to_scan sleep_millisecs max_page_sharing use_zero_pages merge_across_nodes "
        "smart_scan stable_node_chains_prune_millisecs advisor_mode advisor_max_cpu "
        "advisor_min_pages_to_scan advisor_max_pages_to_scan advisor_target_scan_time"
    ).split()
    assert set(V.SYSFS_PATHS) == {f"/sys/kernel/mm/ksm/{k}" for k in knobs} | {
        "/sys/kernel/mm/lru_gen/enabled"
    }
    assert set(V.KSM_KNOBS) == set(knobs)


@pytest.mark.parametrize(
    ("word", "choices", "hint"),
    [
        ("MADV_MERGABLE", V.ADVICE, "MADV_MERGEABLE"),
        ("madv_mergeable", V.ADVICE, "MADV_MERGEABLE"),
        ("MERGEABLE", V.ADVICE, "MADV_MERGEABLE"),
        ("UNMERGEABLE", V.ADVICE, "MADV_UNMERGEABLE"),
        ("MREMAP_MAYMOV", V.MREMAP_FLAGS, "MREMAP_MAYMOVE"),
        ("PROT_RAED", V.PROT_FLAGS, "PROT_READ"),
        ("MAP_ANON", V.MAP_FLAGS, "MAP_ANONYMOUS"),
        ("PR_SET_MEMORY_MERGER", V.PRCTL_OPTIONS, "PR_SET_MEMORY_MERGE"),
        ("pages_sharng", V.COUNTERS, "pages_sharing"),
        ("run", V.SYSFS_PATHS, "/sys/kernel/mm/ksm/run"),
        ("zzzz", V.ADVICE, None),
    ],
)
def test_did_you_mean(word, choices, hint):
    assert V.did_you_mean(word, choices) == hint


def test_parse_constant_and_flags():
    assert V.parse_constant("MADV_COLD", V.ADVICE, "advice") == "MADV_COLD"
    with pytest.raises(ValueError, match=r"unknown advice 'MADV_MERGABLE'; did you mean 'MADV_MERGEABLE'\?"):
        V.parse_constant("MADV_MERGABLE", V.ADVICE, "advice")
    with pytest.raises(ValueError, match=r"expected one of: MADV_NORMAL, "):
        V.parse_constant("XYZZY", V.ADVICE, "advice")
    assert V.parse_flags("PROT_READ|PROT_WRITE", V.PROT_FLAGS, "prot flag") == (
        "PROT_READ", "PROT_WRITE")
    assert V.parse_flags(" PROT_READ | PROT_EXEC ", V.PROT_FLAGS, "prot flag") == (
        "PROT_READ", "PROT_EXEC")
    assert V.parse_flags("MAP_SHARED", V.MAP_FLAGS, "mmap flag") == ("MAP_SHARED",)
    with pytest.raises(ValueError, match="empty prot flag"):
        V.parse_flags("PROT_READ||PROT_WRITE", V.PROT_FLAGS, "prot flag")
    with pytest.raises(ValueError, match="did you mean 'MAP_FIXED_NOREPLACE'"):
        V.parse_flags("MAP_PRIVATE|MAP_FIXED_NOREPLAC", V.MAP_FLAGS, "mmap flag")


# The schema checks strings with the *_PATTERN regexes; the loader with the parse functions.
# They must agree on every string, or `ksmrepro validate` and the schema would disagree.
_STRINGS = [
    "4096", "0x1000", "3 pages", "1 page", "512K", "2M", "1G", "1g", "3 pagez", "1.5M", "",
    "base", "base + 1 page", "base2 - 64K", "b+1page+64K", "0x7f0000000000", "base +", "1base",
    "1s", "20ms", "500us", "100ns", "1.5s", "20", "1h", "1.5", "-1s",
    ">= 1", "< 10", "== 3", "!= 0", "7", "-5", "=> 1", "= 1", ">=",
]


def _accepts(parse, text):
    try:
        parse(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("pattern", "parse"),
    [
        (V.SIZE_PATTERN, V.parse_size),
        (V.ADDR_PATTERN, V.parse_addr),
        (V.DURATION_PATTERN, V.parse_duration),
        (V.COMPARISON_PATTERN, V.parse_comparison),
    ],
)
def test_patterns_agree_with_parsers(pattern, parse):
    for text in _STRINGS:
        assert bool(re.search(V.anchored(pattern), text)) == _accepts(parse, text), text


def test_duration_pattern_is_laxer_only_on_fractional_nanoseconds():
    # The one documented difference: the schema cannot see that 1.5ns is not whole.
    assert re.search(V.anchored(V.DURATION_PATTERN), "1.5ns")
    assert not _accepts(V.parse_duration, "1.5ns")


def test_flags_pattern():
    pat = V.anchored(V.flags_pattern(V.MAP_FLAGS))
    assert re.search(pat, "MAP_PRIVATE|MAP_ANONYMOUS")
    assert re.search(pat, "MAP_FIXED_NOREPLACE")
    assert re.search(pat, "MAP_FIXED | MAP_SHARED")
    assert not re.search(pat, "MAP_FIXED_NOREPLAC")
    assert not re.search(pat, "MAP_PRIVATE||MAP_SHARED")
    assert not re.search(pat, "PROT_READ")
