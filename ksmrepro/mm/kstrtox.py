"""lib/kstrtox.c: how the kernel's sysfs store functions read a number or a boolean.

Each returns None where the kernel function fails (the store answers EINVAL)."""

from __future__ import annotations

UINT_MAX = 0xFFFF_FFFF


def kstrtouint(s: str, base: int = 10) -> int | None:
    """kstrtouint(s, base): an optional "+", digits of ``base`` (base 0: "0x" hex, a leading
    "0" octal, else decimal), at most one trailing newline, at most UINT_MAX."""
    if s.endswith("\n"):
        s = s[:-1]
    if s.startswith("+"):
        s = s[1:]
    if base == 0:
        if s[:2].lower() == "0x" and len(s) > 2:
            s, base = s[2:], 16
        elif s.startswith("0") and len(s) > 1:
            s, base = s[1:], 8
        else:
            base = 10
    digits = "0123456789abcdef"[:base]
    if not s or any(c not in digits for c in s.lower()):
        return None
    x = int(s, base)
    return x if x <= UINT_MAX else None


def kstrtobool(s: str) -> bool | None:
    """kstrtobool(): the first character decides (y/Y/t/T/1, n/N/f/F/0, or "on"/"off" by the
    second)."""
    if s[:1] in ("y", "Y", "t", "T", "1"):
        return True
    if s[:1] in ("n", "N", "f", "F", "0"):
        return False
    if s[:1] in ("o", "O") and s[1:2] in ("n", "N", "f", "F"):
        return s[1:2] in ("n", "N")
    return None
