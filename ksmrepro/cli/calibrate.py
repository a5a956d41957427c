"""``ksmrepro calibrate``: models against recorded or live real-kernel runs (ksmrepro/realkernel/)."""

from ksmrepro.realkernel.command import command

__all__ = ["command"]
