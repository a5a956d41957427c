"""``--tap``: KTAP / TAP version 13, as the kernel selftests print it.

::

    TAP version 13
    1..3
    ok 1 hugh.yaml::v7.0-rc6+ksm-pte-mkold
    # ksm-mremap-swapout [mm-2026-04+ksm-pte-mkold]: known failure (1 of 2 expectations failed)
    # ...
    not ok 2 hugh.yaml::mm-2026-04+ksm-pte-mkold # TODO known failure: ...
    ok 3 hugh.yaml::mm-2026-08+ksm-pte-mkold
    # Totals: pass:2 fail:0 xfail:1 xpass:0 skip:0 error:0

Diagnostics (the mismatch block) come before the result line they explain, as
kselftest does.  A known failure is ``not ok ... # TODO``; an unexpected pass is
a plain ``not ok`` (the ``known_failures`` entry is out of date, which fails).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ksmrepro.report.text import mismatch_block, run_ids

if TYPE_CHECKING:
    from ksmrepro.report import RunRecord

__all__ = ["tap_text"]


def _directive_text(text: str) -> str:
    # One line, and no '#' that a TAP parser would take for another directive.
    return " ".join(text.split()).replace("#", "")


def tap_text(records: Sequence[RunRecord]) -> str:
    """The TAP document, ending in a newline."""
    lines = ["TAP version 13", f"1..{len(records)}"]
    totals = {"pass": 0, "fail": 0, "xfail": 0, "xpass": 0, "skip": 0, "error": 0}
    ids = run_ids(r.result for r in records)
    for n, (record, test_id) in enumerate(zip(records, ids, strict=True), start=1):
        result = record.result
        status = result.status
        if record.kernel_bug is not None or status == "error":
            key, line = "error", f"not ok {n} {test_id}"
        elif status == "known-failure":
            reason = _directive_text(result.known_failure_reason or "")
            key, line = "xfail", f"not ok {n} {test_id} # TODO known failure: {reason}"
        elif status == "unexpected-pass":
            key, line = "xpass", f"not ok {n} {test_id}"
        elif status == "failed":
            key, line = "fail", f"not ok {n} {test_id}"
        else:
            key, line = "pass", f"ok {n} {test_id}"
        totals[key] += 1
        if key != "pass":
            block = mismatch_block(result, record.scenario, record.kernel_bug)
            lines += [f"# {text}".rstrip() for text in block.splitlines()]
        lines.append(line)
    lines.append("# Totals: " + " ".join(f"{k}:{v}" for k, v in totals.items()))
    return "\n".join(lines) + "\n"
