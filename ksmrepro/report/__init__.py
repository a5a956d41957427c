"""Reports: turn run results into text, rich renderables, JSON, JUnit XML and TAP.

Every renderer takes a list of :class:`RunRecord` (one per scenario × model, in run
order) and returns data or writes to the console it is given; none of them runs
anything, exits, or reads the clock.

- ``report.text``: plain-text pieces, above all :func:`mismatch_block`, shared by
  the console report, JUnit, TAP and the pytest plugin
- ``report.console``: the rich console report
- ``report.json``: the ``--json`` document (scenario-format.md)
- ``report.junit``: ``--junit`` XML
- ``report.tap``: ``--tap`` KTAP/TAP 13
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ksmrepro.runner.results import RunResult
    from ksmrepro.scenario.steps import Scenario

__all__ = ["FAILING_STATUSES", "RunRecord"]

#: statuses that make ``ksmrepro run`` exit 1 (scenario-format.md, "Running and reports")
FAILING_STATUSES = frozenset({"failed", "unexpected-pass", "error"})


@dataclass(frozen=True)
class RunRecord:
    """One scenario on one model, as the reports see it.

    :param result: what the runner returned (or a stand-in when the run stopped)
    :param scenario: the scenario that ran, for step names and lines (None: unknown)
    :param kernel_bug: the text of a ``KernelBug`` (simulated ``VM_BUG_ON``) that
        stopped the run; ``result.status`` is then ``"error"``
    """

    result: RunResult
    scenario: Scenario | None = None
    kernel_bug: str | None = None

    @property
    def failing(self) -> bool:
        return self.kernel_bug is not None or self.result.status in FAILING_STATUSES
