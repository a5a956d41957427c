"""Page contents, kept compactly.  SIM-ONLY: the kernel has the bytes.

A page's content is a tuple ``(fill, patches, stamp)``:

* ``fill``: the byte (0..255) every offset holds unless patched;
* ``patches``: sorted ``((offset, byte), ...)`` overriding single bytes;
* ``stamp``: ``None``, or an integer written big-endian into bytes 0..7 (how
  ``touch`` without a value makes every page unique), applied before patches.

Equal pages have equal tuples, so equality is one tuple compare.  The order
:func:`memcmp_pages` gives is the byte order memcmp() would give on the real
pages, which the KSM trees are sorted by.  :func:`calc_checksum` replaces
mm/ksm.c calc_checksum() (xxhash of the page): CUSTOM, crc32 of a canonical
encoding, deterministic across processes.
"""

from __future__ import annotations

import zlib

Content = tuple  # (fill: int, patches: tuple[tuple[int, int], ...], stamp: int | None)

ZERO: Content = (0, (), None)
_STAMP_LEN = 8


def filled(byte: int) -> Content:
    return (byte & 0xFF, (), None)


def byte_at(c: Content, off: int) -> int:
    fill, patches, stamp = c
    for o, b in patches:
        if o == off:
            return b
    if stamp is not None and off < _STAMP_LEN:
        return (stamp >> (8 * (_STAMP_LEN - 1 - off))) & 0xFF
    return fill


def write_byte(c: Content, off: int, byte: int) -> Content:
    fill, patches, stamp = c
    if byte_at(c, off) == byte:
        return c
    p = dict(patches)
    p[off] = byte & 0xFF
    return (fill, tuple(sorted(p.items())), stamp)


def stamped(c: Content, stamp: int) -> Content:
    """Content after writing a unique 8-byte stamp at offset 0 (patches there are overwritten)."""
    fill, patches, _ = c
    return (fill, tuple((o, b) for o, b in patches if o >= _STAMP_LEN), stamp)


def _head(c: Content) -> bytes:
    """Bytes 0..7 of a page without patches: the stamp, or the fill byte."""
    stamp = c[2]
    if stamp is None:
        return bytes((c[0],)) * _STAMP_LEN
    return (stamp & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(_STAMP_LEN, "big")


def memcmp_pages(a: Content, b: Content) -> int:
    """<0, 0, >0 as memcmp(page_a, page_b, PAGE_SIZE) would answer."""
    if a == b:
        return 0
    if not a[1] and not b[1]:  # no patches (memset, touch): the head, then the fills decide
        ha, hb = _head(a), _head(b)
        if ha != hb:
            for x, y in zip(ha, hb, strict=True):
                if x != y:
                    return x - y
        return a[0] - b[0]
    # Offsets where either page is not its fill byte; elsewhere the fills decide.
    special = {o for o, _ in a[1]} | {o for o, _ in b[1]}
    if a[2] is not None or b[2] is not None:
        special.update(range(_STAMP_LEN))
    off = 0
    for o in sorted(special):
        if o > off and a[0] != b[0]:  # a plain offset before this one differs
            return a[0] - b[0]
        x, y = byte_at(a, o), byte_at(b, o)
        if x != y:
            return x - y
        off = o + 1
    if a[0] != b[0] and off < 4096:
        return a[0] - b[0]
    return 0


_checksums: dict[Content, int] = {}


def calc_checksum(c: Content) -> int:
    v = _checksums.get(c)
    if v is None:
        if len(_checksums) > 100_000:
            _checksums.clear()
        v = _checksums[c] = zlib.crc32(repr(c).encode()) & 0xFFFFFFFF
    return v


def describe(c: Content) -> str:
    fill, patches, stamp = c
    s = f"fill {fill:#04x}"
    if stamp is not None:
        s += f" stamp {stamp}"
    if patches:
        s += " " + ",".join(f"[{o}]={b:#04x}" for o, b in patches)
    return s
