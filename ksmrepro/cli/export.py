"""``ksmrepro export``: a scenario as the C testcase (ksmrepro/export/)."""

from ksmrepro.export.command import command

__all__ = ["command"]
