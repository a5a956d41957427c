"""The cpio "newc" format the kernel unpacks into its rootfs (``usr/gen_init_cpio.c``).

An initramfs is a cpio archive in the SVR4 "newc" format (magic ``070701``): each
entry is a 110-byte ASCII header of 13 eight-digit hex fields, the NUL-terminated
name padded to a multiple of 4 bytes, then the data padded to a multiple of 4
bytes; ``TRAILER!!!`` ends the archive (Documentation/driver-api/early-userspace/
buffer-format.rst).  The writer here is deterministic: inode numbers count from
1, every mtime is 0, entries come out in the order they were added, so the same
contents always make the same bytes (and the same cache key).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

__all__ = ["CpioEntry", "NEWC_MAGIC", "NewcWriter", "read_newc"]

NEWC_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"
_FIELDS = (
    "ino", "mode", "uid", "gid", "nlink", "mtime", "filesize",
    "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check",
)


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


@dataclass(frozen=True)
class CpioEntry:
    """One member of a newc archive (as :func:`read_newc` returns it)."""

    name: str
    mode: int
    data: bytes = b""
    rdevmajor: int = 0
    rdevminor: int = 0

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)


class NewcWriter:
    """Build a newc archive in memory.

    >>> w = NewcWriter()
    >>> w.add_dir("bin")
    >>> w.add_file("bin/hello", b"hi\\n", mode=0o755)
    >>> [e.name for e in read_newc(w.getvalue())]
    ['bin', 'bin/hello']
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._ino = 0
        self._names: set[str] = set()
        self._done = False

    def _entry(self, name: str, mode: int, data: bytes = b"", *,
               nlink: int = 1, rdev: tuple[int, int] = (0, 0)) -> None:
        if self._done:
            raise ValueError("archive already finished")
        name = name.lstrip("/")
        if name != _TRAILER:
            if not name or "\0" in name:
                raise ValueError(f"bad cpio member name {name!r}")
            if name in self._names:
                raise ValueError(f"duplicate cpio member {name!r}")
            self._names.add(name)
        self._ino += 1
        raw_name = name.encode() + b"\0"
        values = {
            "ino": self._ino if name != _TRAILER else 0,
            "mode": mode, "uid": 0, "gid": 0, "nlink": nlink, "mtime": 0,
            "filesize": len(data), "devmajor": 0, "devminor": 0,
            "rdevmajor": rdev[0], "rdevminor": rdev[1],
            "namesize": len(raw_name), "check": 0,
        }
        header = NEWC_MAGIC + b"".join(b"%08X" % values[f] for f in _FIELDS)
        self._chunks += [header, raw_name, _pad4(len(header) + len(raw_name)),
                         data, _pad4(len(data))]

    def add_dir(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def add_file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def add_symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def add_chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def getvalue(self) -> bytes:
        """The archive, with its trailer (the writer cannot be added to afterwards)."""
        if not self._done:
            self._entry(_TRAILER, 0)
            self._done = True
        return b"".join(self._chunks)


def read_newc(data: bytes) -> list[CpioEntry]:
    """Parse a newc archive (up to its trailer) into entries.

    :raises ValueError: a header without the ``070701`` magic, or a truncated archive.
    """
    out: list[CpioEntry] = []
    pos = 0
    while True:
        header = data[pos:pos + 110]
        if len(header) < 110 or header[:6] != NEWC_MAGIC:
            raise ValueError(f"no newc header at offset {pos}")
        fields = {f: int(header[6 + 8 * i:14 + 8 * i], 16) for i, f in enumerate(_FIELDS)}
        name_end = pos + 110 + fields["namesize"]
        name = data[pos + 110:name_end - 1].decode()
        pos = name_end + (-name_end % 4)
        body = data[pos:pos + fields["filesize"]]
        if len(body) < fields["filesize"]:
            raise ValueError(f"truncated cpio member {name!r}")
        pos += fields["filesize"] + (-fields["filesize"] % 4)
        if name == _TRAILER:
            return out
        out.append(CpioEntry(name, fields["mode"], body, fields["rdevmajor"],
                             fields["rdevminor"]))
