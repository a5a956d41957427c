"""Running scenarios on real kernels under QEMU, and calibrating the models against them."""

from ksmrepro.export.parse import RealRunResult
from ksmrepro.realkernel.errors import (
    GuestError,
    GuestTimeoutError,
    KernelImageError,
    RealKernelError,
    ToolMissingError,
)
from ksmrepro.realkernel.runner import run_on_kernel

__all__ = [
    "GuestError",
    "GuestTimeoutError",
    "KernelImageError",
    "RealKernelError",
    "RealRunResult",
    "ToolMissingError",
    "run_on_kernel",
]
