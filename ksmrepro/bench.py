"""``make bench``: performance figures against the project's targets (not a test).

Prints, for the record: Hugh's testcase wall time on its three models, simulated page
events per second under 1G and 4G of pressure, peak Python memory per simulated page, and
ksmd page visits per second on a large mergeable region.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from pathlib import Path

from ksmrepro.runner import run_scenario
from ksmrepro.scenario import load_scenario, load_scenario_text

ROOT = Path(__file__).resolve().parent.parent

PRESSURE = """
name: bench-pressure-{anon}
machine: {{memory: 1G, swap: {swap}}}
steps:
  - sysfs: {{path: /sys/kernel/mm/lru_gen/enabled, value: {lru_gen}}}
  - mmap: {{as: a, length: 2 pages}}
  - memset: {{addr: a, value: 1, length: 2 pages}}
  - pressure: {{anon: {anon}, touches: 2}}
  - print: [pswpin, pswpout]
"""

KSMD = """
name: bench-ksmd
machine: {{memory: 4G, swap: 0}}
steps:
  - mmap: {{as: a, length: {pages} pages}}
  - memset: {{addr: a, value: 0x5a, length: {pages} pages}}
  - sysfs: {{path: /sys/kernel/mm/ksm/pages_to_scan, value: 100000}}
  - sysfs: {{path: /sys/kernel/mm/ksm/run, value: 1}}
  - madvise: {{addr: a, length: {pages} pages, advice: MADV_MERGEABLE}}
  - ksm_wait: {{full_scans: 2}}
  - print: [pages_scanned, pages_shared, pages_sharing]
  - ksm_wait: {{full_scans: 2}}
  - print: [pages_scanned]
"""


def _row(what: str, value: str, target: str, ok: bool | None) -> None:
    mark = "" if ok is None else ("  ok" if ok else "  MISSED")
    print(f"  {what:<48} {value:>16}   target {target}{mark}")


def bench_hugh() -> None:
    sc = load_scenario(ROOT / "scenarios" / "hugh.yaml")
    t = time.perf_counter()
    for m in sc.models:
        run_scenario(sc, m)
    dt = time.perf_counter() - t
    _row("hugh.yaml, its 3 models, serial (s)", f"{dt:.3f}", "< 1 s", dt < 1.0)


def bench_pressure(anon: str, swap: str, lru_gen: str = "n") -> None:
    sc = load_scenario_text(PRESSURE.format(anon=anon, swap=swap, lru_gen=lru_gen),
                            f"<bench {anon}>")
    if lru_gen == "y":
        anon += " MGLRU"
    gc.collect()
    t = time.perf_counter()
    res = run_scenario(sc, "v7.0-rc6")
    dt = time.perf_counter() - t
    s = res.stats
    events = s.get("pgfault", 0) + s.get("pswpin", 0) + s.get("pswpout", 0)
    rate = events / dt
    _row(f"pressure {anon}: faults+swap-ins+swap-outs", f"{events}", "", None)
    _row(f"pressure {anon}: page events per second", f"{rate / 1e6:.2f} M/s", ">= 2 M/s",
         rate >= 2e6)
    tracemalloc.start()
    run_scenario(sc, "v7.0-rc6")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    pages = (1 << 30 if anon.startswith("1G") else 4 << 30) // 4096
    _row(f"pressure {anon}: peak bytes per simulated page", f"{peak / pages:.1f}", "<= 100",
         peak / pages <= 100)


def bench_ksmd(pages: int = 256 * 1024) -> None:
    """ksmd's visit rate: visits over the time spent in ksm_do_scan() (ksmd's own work), and,
    for the record, over the scenario's whole wall time (faults, invariant checks, ...)."""
    from ksmrepro.mm.ksm import Ksm

    spent = [0.0]
    orig = Ksm.ksm_do_scan

    def timed(self: Ksm, n: int) -> int:
        t0 = time.perf_counter()
        try:
            return orig(self, n)
        finally:
            spent[0] += time.perf_counter() - t0

    sc = load_scenario_text(KSMD.format(pages=pages), "<bench ksmd>")
    Ksm.ksm_do_scan = timed  # type: ignore[method-assign]
    try:
        t = time.perf_counter()
        res = run_scenario(sc, "v7.0-rc6")
        dt = time.perf_counter() - t
    finally:
        Ksm.ksm_do_scan = orig  # type: ignore[method-assign]
    visits = res.observations[1].values["pages_scanned"]
    rate = visits / spent[0]
    _row(f"ksmd: {pages} identical pages, checksum+merge+2 steady scans",
         f"{visits} visits", "", None)
    _row("ksmd: page visits per second of ksmd time", f"{rate / 1e6:.2f} M/s", ">= 1 M/s",
         rate >= 1e6)
    _row("ksmd: same, over the scenario's wall time", f"{visits / dt / 1e6:.2f} M/s", "", None)


def main() -> int:
    print(f"ksmrepro benchmarks (Python {sys.version.split()[0]})")
    bench_hugh()
    bench_pressure("1G", "2G")
    bench_pressure("4G", "8G")
    bench_pressure("1G", "2G", lru_gen="y")
    bench_ksmd()
    return 0


if __name__ == "__main__":
    sys.exit(main())
