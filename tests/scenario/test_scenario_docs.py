"""docs/scenario-format.md lists what the loader accepts."""

import re
from pathlib import Path

import pytest

from ksmrepro.scenario import loader as L
from ksmrepro.scenario import values as V

DOC = (Path(__file__).resolve().parents[2] / "docs" / "scenario-format.md").read_text()

NAMES = [
    *L.STEP_SPECS, *L.COMMON_KEYS, *L.TOP_LEVEL_KEYS, *L.MACHINE_KEYS, *V.COUNTERS, *V.ADVICE,
    *V.MREMAP_FLAGS, *V.PROT_FLAGS, *V.MAP_FLAGS, *V.PRCTL_OPTIONS, *V.ERRNOS, *V.SIGNALS,
    *V.KSM_KNOBS, *V.THP_MODES, *V.DUMP_WHAT, V.LRU_GEN_ENABLED,
    *(a.name for s in L.STEP_SPECS.values() for a in s.args),
]


@pytest.mark.parametrize("name", sorted(set(NAMES)))
def test_doc_mentions(name):
    assert re.search(rf"(?<![\w/]){re.escape(name)}(?!\w)", DOC), name
