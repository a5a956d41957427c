"""Model registry: bases, patches, named models, series; model expressions.

A model expression is ``BASE[+PATCH...]`` or ``NAMED[+PATCH...]``, e.g.
``v7.0-rc6+ksm-rmap-walk-address-range`` or ``mm-2026-04+ksm-pte-mkold``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ksmrepro.errors import ModelError
from ksmrepro.models import bases as _bases
from ksmrepro.models import patches as _patches
from ksmrepro.models.base import Base, Model, Patch

__all__ = [
    "BASES", "DEFAULT_MODEL", "NAMED", "PATCHES", "SERIES", "Series",
    "get_patch", "resolve", "split_expression",
]

BASES: dict[str, Base] = {b.name: b for b in _bases.ALL}
PATCHES: dict[str, Patch] = {p.name: p for p in _patches.ALL}

# Named models: what a kernel tree *was*, as an expression.
NAMED: dict[str, tuple[str, str]] = {
    "mm-2026-04": ("v7.0-rc6+ksm-rmap-walk-address-range",
                   "mm.git in April 2026: v7.0-rc6 with xu xin's v3 range patch (Hugh's mm.git)"),
    "mm-2026-08": ("v7.0-rc6+ksm-rmap-walk-linear-page-index",
                   "mm-new in August 2026: the linear_page_index fix series instead of v3"),
}

DEFAULT_MODEL = "v7.0-rc6"


@dataclass(frozen=True)
class Series:
    """An ordered patch series on a base: what ``bisect`` walks."""

    name: str
    base: str
    patches: tuple[str, ...]
    summary: str


SERIES: dict[str, Series] = {
    "ksm-rmap-walk": Series(
        name="ksm-rmap-walk",
        base="v7.0-rc6",
        patches=(
            "ksm-rmap-walk-addr-once",
            "ksm-rmap-walk-address-range",
            "ksm-rmap-item-linear-page-index",
            "ksm-rmap-walk-page-index",
        ),
        summary="xu xin's rmap_walk_ksm optimisation as it went: v3 in mm.git, then the fix.",
    ),
}


def _unknown(kind: str, name: str, known: list[str]) -> ModelError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ModelError(f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})")


def get_patch(name: str) -> Patch:
    try:
        return PATCHES[name]
    except KeyError:
        raise _unknown("patch", name, sorted(PATCHES)) from None


def split_expression(expr: str) -> tuple[str, list[str]]:
    """``"mm-2026-04+ksm-pte-mkold"`` -> (base name, [patch names]) with named models expanded."""
    head, *rest = [p.strip() for p in expr.strip().split("+")]
    if not head:
        raise ModelError(f"empty model expression {expr!r}")
    if head in NAMED:
        base, patches = split_expression(NAMED[head][0])
        return base, patches + rest
    if head not in BASES:
        raise _unknown("model", head, sorted(BASES) + sorted(NAMED))
    return head, rest


def _expand(names: list[str]) -> list[Patch]:
    out: list[Patch] = []
    for n in names:
        p = get_patch(n)
        out.extend(_expand(list(p.parts)) if p.parts else [p])
    return out


def resolve(expr: str) -> Model:
    """Resolve a model expression to its switches.

    :raises ModelError: unknown base/patch, a patch applied twice or before what it requires.
    """
    base_name, patch_names = split_expression(expr)
    base = BASES[base_name]
    patches = _expand(patch_names)
    switches = base.switches
    seen: list[str] = []
    for p in patches:
        if p.name in seen:
            raise ModelError(f"{expr}: patch {p.name!r} applied twice")
        missing = [r for r in p.requires if r not in seen]
        if missing:
            raise ModelError(f"{expr}: patch {p.name!r} needs {', '.join(missing)} first")
        switches = p.apply(switches)
        seen.append(p.name)
    return Model(name=expr.strip(), base=base, patches=tuple(patches), switches=switches)
