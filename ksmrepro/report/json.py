"""The ``--json`` document (scenario-format.md, "Running and reports").

``{"version": 1, "runs": [RunResult.to_json(), ...]}`` with the contract's keys
unchanged, plus additions the contract allows:

- top level ``"environment"``: ksmrepro and Python versions
- per run ``"model_detail"``: the model's base, patches and switches
- per run ``"kernel_bug"``: only when a simulated ``VM_BUG_ON`` stopped the run
- per run ``"trace"``: only with ``--trace``; ``"dumps"``: only when ``dump`` steps ran

The output is deterministic: runs in run order, keys we add sorted, no timestamps,
so a serial run and a ``-j N`` run give byte-identical documents.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ksmrepro

if TYPE_CHECKING:
    from ksmrepro.report import RunRecord

__all__ = ["FORMAT_VERSION", "environment", "json_document", "json_text", "model_detail"]

FORMAT_VERSION = 1


def environment() -> dict[str, str]:
    """What produced the document (no host names, no times: the output must be reproducible)."""
    return {"ksmrepro": ksmrepro.__version__, "python": platform.python_version()}


def model_detail(expr: str) -> dict[str, Any] | None:
    """``{"base": ..., "patches": [...], "switches": {...}}`` for a model expression."""
    from ksmrepro.errors import ModelError
    from ksmrepro.models import resolve

    try:
        model = resolve(expr)
    except ModelError:
        return None
    switches = dataclasses.asdict(model.switches)
    return {
        "base": model.base.name,
        "patches": [p.name for p in model.patches],
        "switches": {k: switches[k] for k in sorted(switches)},
    }


def _run(record: RunRecord, trace: bool) -> dict[str, Any]:
    result = record.result
    run = result.to_json()
    run["model_detail"] = model_detail(result.model)
    if record.kernel_bug is not None:
        run["kernel_bug"] = record.kernel_bug
    if trace:
        run["trace"] = [ev.to_json() for ev in result.trace]
    if result.dumps:
        run["dumps"] = result.dumps
    return run


def json_document(records: Sequence[RunRecord], *, trace: bool = False) -> dict[str, Any]:
    """The document as Python data."""
    return {
        "version": FORMAT_VERSION,
        "runs": [_run(r, trace) for r in records],
        "environment": environment(),
    }


def json_text(records: Sequence[RunRecord], *, trace: bool = False) -> str:
    """The document as text, ending in a newline."""
    return json.dumps(json_document(records, trace=trace), indent=2, ensure_ascii=False,
                      default=str) + "\n"
