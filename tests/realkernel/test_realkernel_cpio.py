"""ksmrepro.realkernel.cpio: the newc writer, read back by Python and by busybox cpio."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest

from ksmrepro.realkernel.cpio import NEWC_MAGIC, NewcWriter, read_newc


def _archive() -> bytes:
    w = NewcWriter()
    w.add_dir("bin")
    w.add_file("bin/busybox", b"\x7fELF" + bytes(range(256)) * 3, mode=0o755)
    w.add_symlink("bin/sh", "busybox")
    w.add_chardev("dev/console", 5, 1)
    w.add_file("init", b"#!/bin/sh\necho hi\n", mode=0o755)
    w.add_file("empty", b"")
    return w.getvalue()


def test_round_trip():
    entries = read_newc(_archive())
    assert [e.name for e in entries] == ["bin", "bin/busybox", "bin/sh", "dev/console", "init",
                                         "empty"]
    by_name = {e.name: e for e in entries}
    assert by_name["bin"].is_dir
    assert by_name["bin/busybox"].data.startswith(b"\x7fELF")
    assert stat.S_IMODE(by_name["bin/busybox"].mode) == 0o755
    assert by_name["bin/sh"].is_symlink
    assert by_name["bin/sh"].data == b"busybox"
    assert stat.S_ISCHR(by_name["dev/console"].mode)
    assert (by_name["dev/console"].rdevmajor, by_name["dev/console"].rdevminor) == (5, 1)
    assert by_name["init"].data == b"#!/bin/sh\necho hi\n"
    assert by_name["empty"].data == b""


def test_headers_and_alignment():
    data = _archive()
    assert data.startswith(NEWC_MAGIC)
    assert len(data) % 4 == 0
    assert b"TRAILER!!!\0" in data
    # every header starts on a 4-byte boundary
    pos = 0
    for _ in read_newc(data):
        assert data[pos:pos + 6] == NEWC_MAGIC
        namesize = int(data[pos + 94:pos + 102], 16)
        filesize = int(data[pos + 54:pos + 62], 16)
        pos += 110 + namesize
        pos += -pos % 4
        pos += filesize + (-filesize % 4)


def test_deterministic():
    assert _archive() == _archive()


def test_bad_input():
    w = NewcWriter()
    w.add_file("a", b"x")
    with pytest.raises(ValueError, match="duplicate"):
        w.add_file("a", b"y")
    with pytest.raises(ValueError, match="name"):
        w.add_file("", b"y")
    data = w.getvalue()
    with pytest.raises(ValueError, match="finished"):
        w.add_file("b", b"")
    with pytest.raises(ValueError, match="header"):
        read_newc(b"070707" + data[6:])
    with pytest.raises(ValueError, match="no newc header|truncated"):
        read_newc(data[:120])


@pytest.mark.skipif(shutil.which("busybox") is None and not shutil.which("cpio"),
                    reason="no cpio tool to cross-check with")
def test_a_real_cpio_lists_it(tmp_path):
    tool = ["cpio"] if shutil.which("cpio") else ["busybox", "cpio"]
    out = subprocess.run([*tool, "-t"], input=_archive(), capture_output=True, check=True)
    assert out.stdout.decode().split() == ["bin", "bin/busybox", "bin/sh", "dev/console",
                                           "init", "empty"]
