"""Model registry: bases, patches, named models, series; model expressions.

It reads like a patch series:

- **bases** (``bases.py``): released or -rc kernels, ``v6.1``, ``v7.0-rc6``;
- **patches** (``patches/<name>.py``, one module each): an upstream (or local testing) patch,
  with its title, commit or lore reference, the kernel function whose decision it changes,
  an explanation, and the switch values it sets;
- **named models** (:data:`NAMED`): what a tree *was*, as an expression (``mm-2026-04`` is
  ``v7.0-rc6+ksm-rmap-walk-address-range``);
- **series** (:data:`SERIES`): a base and patches in the order they were applied, which is
  what ``ksmrepro bisect`` walks.

A model expression is ``BASE[+PATCH...]`` or ``NAMED[+PATCH...]``, e.g.
``v7.0-rc6+ksm-rmap-walk-address-range`` or ``mm-2026-04+ksm-pte-mkold``.

Model files (``models/userfile.py``, docs/models.md) add named models, patches and series
of their own; they are *installed* here as a :class:`ModelFile` and can be removed again
(:func:`reset_user_models`), so the built-in definitions are never changed.  This module
does no IO.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ksmrepro.errors import ModelError
from ksmrepro.models import bases as _bases
from ksmrepro.models import patches as _patches
from ksmrepro.models.base import Base, Model, Patch

__all__ = [
    "BASES",
    "DEFAULT_MODEL",
    "NAMED",
    "PATCHES",
    "SERIES",
    "ModelFile",
    "NamedModel",
    "Series",
    "compose",
    "expand_patches",
    "get_patch",
    "get_series",
    "install_model_file",
    "install_user_state",
    "known_models",
    "reset_user_models",
    "resolve",
    "source_of",
    "split_expression",
    "split_model",
    "user_state",
]


@dataclass(frozen=True)
class NamedModel:
    """A named model: an expression, and (from a model file) sysfs knob overrides.

    :param expr: ``BASE[+PATCH...]``, or another named model plus patches
    :param knobs: ``/sys/kernel/mm/ksm/*`` values set at boot, before the scenario's ``ksm:``
    :param source: the model file that defines it (None: built in)
    """

    name: str
    expr: str
    summary: str = ""
    knobs: tuple[tuple[str, Any], ...] = ()
    source: str | None = None


@dataclass(frozen=True)
class Series:
    """An ordered patch series on a base: what ``bisect`` walks.

    :param base: a base, or a named model (the series then starts from that tree)
    :param patches: patch names, in the order they apply
    """

    name: str
    base: str
    patches: tuple[str, ...]
    summary: str = ""
    source: str | None = None

    def points(self) -> list[str]:
        """The model expression at every point: the base, then one more patch each."""
        return ["+".join((self.base, *self.patches[:i])) for i in range(len(self.patches) + 1)]


@dataclass(frozen=True)
class ModelFile:
    """What one model file defines (already parsed; ``userfile.py`` reads the YAML)."""

    path: str
    models: tuple[NamedModel, ...] = ()
    patches: tuple[Patch, ...] = ()
    series: tuple[Series, ...] = ()
    # (kind, name) -> "path:line:column" of the definition, for error messages
    where: dict[tuple[str, str], str] = field(default_factory=dict, compare=False)


BASES: dict[str, Base] = {b.name: b for b in _bases.ALL}
PATCHES: dict[str, Patch] = {p.name: p for p in _patches.ALL}

# Named models: what a kernel tree *was*, as an expression.
NAMED: dict[str, NamedModel] = {
    m.name: m
    for m in (
        NamedModel("mm-2026-04", "v7.0-rc6+ksm-rmap-walk-address-range",
                   "mm.git in April 2026: v7.0-rc6 with xu xin's v3 range patch (Hugh's mm.git)"),
        NamedModel("mm-2026-08", "v7.0-rc6+ksm-rmap-walk-linear-page-index",
                   "mm-new in August 2026: the linear_page_index fix series instead of v3"),
    )
}

DEFAULT_MODEL = "v7.0-rc6"

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
        summary=(
            "xu xin's rmap_walk_ksm optimisation as it went: v3 1/2 and 2/2 in mm.git "
            "(April 2026), then the linear_page_index fix series on top (v8 1/3, 2/3)."
        ),
    ),
}

# --- names and errors ----------------------------------------------------------------------


def known_models() -> list[str]:
    """Every name a model expression may start with: bases, then named models."""
    return sorted(BASES) + sorted(NAMED)


def _unknown(kind: str, name: str, known: Sequence[str]) -> ModelError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(known) if known else "none"
    return ModelError(f"unknown {kind} {name!r}{hint} (known {kind}s: {listing})")


def get_patch(name: str) -> Patch:
    """:raises ModelError: no such patch (the message lists the known ones)"""
    try:
        return PATCHES[name]
    except KeyError:
        raise _unknown("patch", name, sorted(PATCHES)) from None


def get_series(name: str) -> Series:
    """:raises ModelError: no such series (the message lists the known ones)"""
    try:
        return SERIES[name]
    except KeyError:
        raise _unknown("series", name, sorted(SERIES)) from None


def source_of(kind: str, name: str) -> str | None:
    """The model file that defined ``name`` (kind: model, patch, series); None if built in."""
    for mf in _USER_FILES.values():
        names = {"model": [m.name for m in mf.models], "patch": [p.name for p in mf.patches],
                 "series": [s.name for s in mf.series]}[kind]
        if name in names:
            return mf.path
    return None


# --- expressions ---------------------------------------------------------------------------


def _split(expr: str, depth: int = 0) -> tuple[str, list[str], dict[str, Any]]:
    head, *rest = [p.strip() for p in expr.strip().split("+")]
    if not head or any(not p for p in rest):
        raise ModelError(f"invalid model expression {expr!r}: expected BASE[+PATCH...]")
    if head in NAMED:
        if depth > 16:
            raise ModelError(f"named model {head!r} is defined in terms of itself")
        named = NAMED[head]
        base, patches, knobs = _split(named.expr, depth + 1)
        return base, patches + rest, {**knobs, **dict(named.knobs)}
    if head not in BASES:
        raise _unknown("model", head, known_models())
    return head, rest, {}


def split_expression(expr: str) -> tuple[str, list[str]]:
    """``"mm-2026-04+ksm-pte-mkold"`` -> (base name, [patch names]) with named models expanded."""
    base, patches, _ = _split(expr)
    return base, patches


def expand_patches(names: Iterable[str]) -> list[Patch]:
    """The patches named, with each group (``parts``) replaced by its parts, in order.

    :raises ModelError: an unknown patch name
    """
    out: list[Patch] = []
    for n in names:
        p = get_patch(n)
        out.extend(expand_patches(p.parts) if p.parts else [p])
    return out


def compose(base_name: str, patch_names: Iterable[str], knobs: Iterable[tuple[str, Any]] = (),
            name: str | None = None) -> Model:
    """The model ``base`` + ``patches`` (applied in order) with ``knobs``.

    :param name: the model's name (default: the expression ``BASE+PATCH...``)
    :raises ModelError: unknown base/patch, a patch applied twice or before what it requires.
    """
    patch_names = list(patch_names)
    expr = name or "+".join((base_name, *patch_names))
    try:
        base = BASES[base_name]
    except KeyError:
        raise _unknown("base", base_name, sorted(BASES)) from None
    patches = expand_patches(patch_names)
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
    return Model(name=expr, base=base, patches=tuple(patches), switches=switches,
                 knobs=tuple(knobs))


def resolve(expr: str) -> Model:
    """Resolve a model expression to its switches (and knobs, for a model-file model).

    :raises ModelError: unknown base/patch, a patch applied twice or before what it requires.
    """
    base_name, patch_names, knobs = _split(expr)
    return compose(base_name, patch_names, tuple(knobs.items()), name=expr.strip())


def split_model(expr: str) -> tuple[str, list[str], dict[str, Any]]:
    """Like :func:`split_expression`, with the knobs of model-file models too."""
    return _split(expr)


# --- model files ---------------------------------------------------------------------------

_BUILTIN_NAMES = {
    "model": set(BASES) | set(NAMED),
    "patch": set(PATCHES),
    "series": set(SERIES),
}
_USER_FILES: dict[str, ModelFile] = {}  # path -> definitions, in installation order


def _where(mf: ModelFile, kind: str, name: str) -> str:
    return mf.where.get((kind, name), mf.path)


def install_model_file(mf: ModelFile) -> None:
    """Add a model file's definitions to the registry (again: no-op for the same file).

    Its models and series must resolve, and no name may already be taken, by a built-in
    definition or by another model file.

    :raises ModelError: ``path:line:column: message`` of the first bad definition
    """
    old = _USER_FILES.get(mf.path)
    if old == mf:
        return
    if old is not None:
        _uninstall(old)
    for kind, defs, table in (("model", mf.models, NAMED), ("patch", mf.patches, PATCHES),
                              ("series", mf.series, SERIES)):
        names: set[str] = set()
        for d in defs:
            where = _where(mf, kind, d.name)
            taken = d.name in table or (kind == "model" and d.name in BASES)
            if d.name in names or taken:
                if d.name in _BUILTIN_NAMES[kind] or (kind == "model" and d.name in BASES):
                    raise ModelError(f"{where}: {kind} {d.name!r} is built in; "
                                     "choose another name")
                other = source_of(kind, d.name) or mf.path
                raise ModelError(f"{where}: {kind} {d.name!r} is already defined in {other}")
            names.add(d.name)
    _USER_FILES[mf.path] = mf
    PATCHES.update({p.name: p for p in mf.patches})
    NAMED.update({m.name: m for m in mf.models})
    SERIES.update({s.name: s for s in mf.series})
    try:
        _check(mf)
    except ModelError:
        _uninstall(mf)
        raise


def _check(mf: ModelFile) -> None:
    for p in mf.patches:
        for r in p.requires:
            if r not in PATCHES:
                raise ModelError(f"{_where(mf, 'patch', p.name)}: requires: "
                                 f"{_unknown('patch', r, sorted(PATCHES))}")
    for m in mf.models:
        try:
            resolve(m.name)
        except ModelError as exc:
            raise ModelError(f"{_where(mf, 'model', m.name)}: {m.name}: {exc}") from None
    for s in mf.series:
        for point in s.points():
            try:
                resolve(point)
            except ModelError as exc:
                raise ModelError(f"{_where(mf, 'series', s.name)}: series {s.name}: "
                                 f"{exc}") from None


def _uninstall(mf: ModelFile) -> None:
    _USER_FILES.pop(mf.path, None)
    for p in mf.patches:
        PATCHES.pop(p.name, None)
    for m in mf.models:
        NAMED.pop(m.name, None)
    for s in mf.series:
        SERIES.pop(s.name, None)


def reset_user_models() -> None:
    """Remove every model file's definitions: only the built-in ones remain."""
    for mf in list(_USER_FILES.values()):
        _uninstall(mf)


def user_state() -> tuple[ModelFile, ...]:
    """The installed model files (picklable: a worker process installs the same ones)."""
    return tuple(_USER_FILES.values())


def install_user_state(state: Iterable[ModelFile]) -> None:
    """Make the installed model files exactly ``state`` (see :func:`user_state`)."""
    state = tuple(state)
    if state == user_state():
        return
    reset_user_models()
    for mf in state:
        install_model_file(mf)
