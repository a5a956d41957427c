"""Scenario -> C testcase (``export_c``), and its output -> a :class:`RunResult` (``parse_output``)."""

from ksmrepro.export.c import ExportError, export_c

__all__ = ["ExportError", "export_c"]
