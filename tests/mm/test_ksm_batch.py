"""ksmd's batched visits (Ksm._batch_visits, SIM-ONLY) change nothing observable: every
scenario gives the same report, counters, KSM trees and pages with batching on and off."""

import json
from pathlib import Path

import pytest

from ksmrepro.mm.ksm import Ksm
from ksmrepro.models import resolve
from ksmrepro.runner.run import ScenarioRun
from ksmrepro.scenario import load_scenario, load_scenario_text

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios" / "ksm").glob("*.yaml")) + [
    ROOT / "tests" / "models" / "data" / "mini-hugh.yaml"]

EXTRA = {
    "mixed": """
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: a, length: 600 pages}
        - madvise: {addr: a, length: 600 pages, advice: MADV_MERGEABLE}
        - memset: {addr: a, value: 0x11, length: 300 pages}
        - memset: {addr: a + 300 pages, value: 0x22, length: 200 pages}
        - touch: {addr: a + 500 pages, length: 100 pages}
        - ksm_wait: {full_scans: 3}
        - munmap: {addr: a + 10 pages, length: 20 pages}
        - touch: {addr: a + 100 pages, length: 5 pages, value: 3}
        - ksm_wait: {full_scans: 4}
        - madvise: {addr: a + 200 pages, length: 50 pages, advice: MADV_UNMERGEABLE}
        - ksm_wait: {full_scans: 2}
        - fork: {child: c}
        - ksm_wait: {full_scans: 2}
        - print: all
    """,
    "chains": """
        - sysfs: {path: /sys/kernel/mm/ksm/max_page_sharing, value: 3}
        - sysfs: {path: /sys/kernel/mm/ksm/pages_to_scan, value: 7}
        - sysfs: {path: /sys/kernel/mm/ksm/stable_node_chains_prune_millisecs, value: 0}
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: a, length: 100 pages}
        - memset: {addr: a, value: 0x33, length: 100 pages}
        - madvise: {addr: a, length: 100 pages, advice: MADV_MERGEABLE}
        - ksm_wait: {full_scans: 4}
        - touch: {addr: a, length: 40 pages, value: 9}
        - ksm_wait: {full_scans: 4}
        - print: all
    """,
    "smart-scan": """
        - sysfs: {path: /sys/kernel/mm/ksm/run, value: 1}
        - mmap: {as: a, length: 64 pages}
        - memset: {addr: a, value: 0x44, length: 32 pages}
        - touch: {addr: a + 32 pages, length: 32 pages}
        - madvise: {addr: a, length: 64 pages, advice: MADV_MERGEABLE}
        - ksm_wait: {full_scans: 15}
        - memset: {addr: a + 32 pages, value: 0x44, length: 32 pages}
        - ksm_wait: {full_scans: 15}
        - print: all
    """,
}


def _state(sr: ScenarioRun) -> str:
    k = sr.k
    out = {"result": sr.result.to_json(), "stats": sr.result.stats,
           "counters": {t: k.counters(k.tasks[t]) for t in k.tasks if k.tasks[t].alive},
           "ksm": k._dump_ksm(),
           "pages": {t: k._dump_pages(k.tasks[t].mm, limit=10_000)
                     for t in k.tasks if k.tasks[t].alive}}
    return json.dumps(out, sort_keys=True, default=str)


def _run(scenario, model: str, batched: bool, monkeypatch) -> str:
    monkeypatch.setattr(Ksm, "batched", batched)
    sr = ScenarioRun(scenario, resolve(model))
    sr.result = sr.run()
    return _state(sr)


CASES = [pytest.param(load_scenario(str(p)), id=p.name) for p in SCENARIOS] + [
    pytest.param(load_scenario_text(
        "name: " + n + "\nmachine: {memory: 64M, swap: 128M}\nsteps:\n" + "\n".join(
            "  " + line.strip() if line.strip().startswith("-") else "    " + line.strip()
            for line in text.strip().splitlines()), f"<{n}>"), id=n)
    for n, text in EXTRA.items()]


@pytest.mark.parametrize("scenario", CASES)
@pytest.mark.parametrize("model", ["v7.0-rc6", "v6.1", "mm-2026-08+ksm-pte-mkold"])
def test_batched_visits_are_invisible(scenario, model, monkeypatch):
    assert _run(scenario, model, True, monkeypatch) == _run(scenario, model, False, monkeypatch)
