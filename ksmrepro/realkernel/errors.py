"""Errors of the real-kernel runner.  Each says what is missing and how to get it."""

from __future__ import annotations

from ksmrepro.errors import KsmreproError

__all__ = [
    "GuestError",
    "GuestTimeoutError",
    "KernelImageError",
    "RealKernelError",
    "ToolMissingError",
]


class RealKernelError(KsmreproError):
    """Base of every error of ``ksmrepro.realkernel``."""


class ToolMissingError(RealKernelError):
    """A host tool (qemu-system-x86_64, gcc, a static busybox) is not installed."""


class KernelImageError(RealKernelError):
    """The kernel image (or its modules) is missing or unusable."""


class GuestError(RealKernelError):
    """The guest booted but did not run the test program to its end.

    ``log_path`` is the guest's console log, kept for the user.
    """

    def __init__(self, message: str, log_path: str | None = None) -> None:
        self.log_path = log_path
        if log_path:
            message = f"{message} (console log: {log_path})"
        super().__init__(message)


class GuestTimeoutError(GuestError):
    """The guest did not power off within the timeout; QEMU was killed."""
