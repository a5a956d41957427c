"""One real boot (opt-in): KSMREPRO_KERNEL=/path/to/vmlinuz pytest -m realkernel.

KSMREPRO_MODULES may name the kernel's lib/modules/<release> when it is not next
to boot/ (see docs/real-kernel.md).  About 10 s under TCG.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ksmrepro.realkernel import run_on_kernel
from ksmrepro.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]
KERNEL = os.environ.get("KSMREPRO_KERNEL")


@pytest.mark.realkernel
@pytest.mark.skipif(not KERNEL, reason="set KSMREPRO_KERNEL to a bzImage/vmlinuz to boot")
def test_ten_identical_pages_merge_on_a_real_kernel(tmp_path):
    scenario = load_scenario(str(ROOT / "scenarios" / "calibration" / "ksm-merge-identical.yaml"))
    res = run_on_kernel(scenario, KERNEL, os.environ.get("KSMREPRO_MODULES"), timeout=600,
                        workdir=tmp_path)
    assert res.model.startswith("real:")
    assert res.complete, Path(res.console_log or "").read_text()[-2000:]
    assert res.status == "passed", res.to_json()
    assert res.observations[0].values == {"pages_shared": 1, "pages_sharing": 9}
    assert res.accel in ("kvm", "tcg")
    assert Path(res.console_log).is_file()
