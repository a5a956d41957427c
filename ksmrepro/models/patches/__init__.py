"""One module per patch.  Each defines ``PATCH``; ``ALL`` lists them all, sorted by module name.

Adding a patch is adding a module here (found by itself, see docs/models.md); the order in
which patches are applied is a series' (``registry.SERIES``), never this list's.
"""

from __future__ import annotations

import importlib
import pkgutil

from ksmrepro.models.base import Patch

__all__ = ["ALL"]


def _discover() -> tuple[Patch, ...]:
    out = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        patch = getattr(module, "PATCH", None)
        if not isinstance(patch, Patch):
            raise TypeError(f"{module.__name__} defines no PATCH = Patch(...)")
        out.append(patch)
    return tuple(out)


ALL = _discover()
