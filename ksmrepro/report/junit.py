"""``--junit``: JUnit XML in the shape CI systems read (Jenkins, GitLab, GitHub actions).

``<testsuites>`` holds one ``<testsuite>`` per scenario file, and that one
``<testcase name="scenario[model]" classname="ksmrepro.scenario">`` per run:

- an expectation that failed, or a failed step: ``<failure>`` with the mismatch block
- a known failure: ``<skipped message="known failure: reason">``
- an unexpected pass: ``<failure>`` (the ``known_failures`` entry is out of date)
- status ``error`` or a simulated ``VM_BUG_ON``: ``<error>``

No ``time`` attributes: the document must not change from one run to the next.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ksmrepro
from ksmrepro.report.json import environment, model_detail
from ksmrepro.report.text import mismatch_block, observation_text, step_title

if TYPE_CHECKING:
    from ksmrepro.report import RunRecord

__all__ = ["junit_text", "junit_tree"]


def _properties(parent: ET.Element, props: Sequence[tuple[str, str]]) -> None:
    el = ET.SubElement(parent, "properties")
    for name, value in props:
        ET.SubElement(el, "property", name=name, value=value)


def _system_out(record: RunRecord) -> str:
    lines = []
    for obs in record.result.observations:
        title = step_title(obs.step, obs.op, obs.label)
        verdict = {None: "", True: " ok", False: " FAIL"}[obs.ok]
        lines.append(f"{title}: {observation_text(obs)}{verdict}")
    return "\n".join(lines)


def _testcase(suite: ET.Element, record: RunRecord) -> str:
    """Add one ``<testcase>``; return its outcome: pass, failure, error or skipped."""
    result = record.result
    case = ET.SubElement(suite, "testcase", name=f"{result.scenario}[{result.model}]",
                         classname=f"ksmrepro.{result.scenario}", file=result.file)
    props = [("model", result.model)]
    detail = model_detail(result.model)
    if detail is not None:
        props += [("model.base", detail["base"]), ("model.patches", "+".join(detail["patches"]))]
    if result.known_failure_reason is not None:
        props.append(("known_failure", " ".join(result.known_failure_reason.split())))
    _properties(case, props)
    block = mismatch_block(result, record.scenario, record.kernel_bug)
    first = block.splitlines()[0]
    status = result.status
    if record.kernel_bug is not None or status == "error":
        kind = "KernelBug" if record.kernel_bug is not None else "error"
        ET.SubElement(case, "error", message=first, type=kind).text = block
        outcome = "error"
    elif status == "known-failure":
        reason = " ".join((result.known_failure_reason or "").split())
        ET.SubElement(case, "skipped", message=f"known failure: {reason}").text = block
        outcome = "skipped"
    elif status in ("failed", "unexpected-pass"):
        ET.SubElement(case, "failure", message=first, type=status).text = block
        outcome = "failure"
    else:
        outcome = "pass"
    out = _system_out(record)
    if out:
        ET.SubElement(case, "system-out").text = out
    return outcome


def junit_tree(records: Sequence[RunRecord]) -> ET.Element:
    """The ``<testsuites>`` element."""
    root = ET.Element("testsuites", name="ksmrepro")
    suites: dict[str, ET.Element] = {}
    counts: dict[str, dict[str, int]] = {}
    env = environment()
    for record in records:
        file = record.result.file
        if file not in suites:
            suites[file] = ET.SubElement(root, "testsuite", name=file)
            counts[file] = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
            _properties(suites[file], [("ksmrepro.version", ksmrepro.__version__),
                                       ("python.version", env["python"])])
        outcome = _testcase(suites[file], record)
        c = counts[file]
        c["tests"] += 1
        key = {"failure": "failures", "error": "errors", "skipped": "skipped"}.get(outcome)
        if key:
            c[key] += 1
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for file, suite in suites.items():
        for k, v in counts[file].items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    return root


def junit_text(records: Sequence[RunRecord]) -> str:
    """The XML document as text (UTF-8 declaration, indented, ending in a newline)."""
    root = junit_tree(records)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
