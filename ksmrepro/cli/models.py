"""``ksmrepro models``: bases, patches, named models and series, with their references."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["command"]


def _describe(name: str) -> RenderableType:
    # one name: a series, a patch, or a model (a base, named model or expression)
    from ksmrepro.analysis.render import model_renderable, patch_renderable
    from ksmrepro.errors import ModelError
    from ksmrepro.models import registry

    if name in registry.SERIES:
        from rich.console import Group
        from rich.text import Text

        s = registry.SERIES[name]
        parts: list[RenderableType] = [Text(f"series {s.name} on {s.base}" + (f": {s.summary}" if s.summary else ""),
                      style="bold")]
        for i, pn in enumerate(s.patches, start=1):
            parts.append(Text(f"  {i}. {pn}", style="bold cyan"))
            parts.append(patch_renderable(registry.PATCHES[pn], indent=5))
        return Group(*parts)
    if name in registry.PATCHES and name not in registry.BASES:
        from rich.console import Group
        from rich.text import Text

        return Group(Text(f"patch {name}", style="bold cyan"),
                     patch_renderable(registry.PATCHES[name]))
    try:
        model = registry.resolve(name)
    except ModelError as exc:
        if "+" in name:
            raise
        known = (registry.known_models() + sorted(registry.PATCHES)
                 + sorted(registry.SERIES))
        raise ModelError(f"{name!r} is not a model, patch or series (known: "
                         f"{', '.join(known)})") from exc
    named = registry.NAMED[name].expr if name in registry.NAMED else None
    return model_renderable(model, named)


@click.command("models")
@click.argument("names", nargs=-1, metavar="[NAME|MODEL]...")
@click.option("--models-file", "models_files", multiple=True, metavar="PATH",
              help="A model file (kind: models) to include; repeatable.  The model files in "
                   "./scenarios/models/ are included by themselves.")
def command(names: tuple[str, ...], models_files: tuple[str, ...]) -> None:
    """List bases, patches (title, reference, function, explanation), named models and
    series.  With NAMEs, show those: a patch, a series, or a model expression resolved to
    its patches and switches.  An unknown name exits 2 with the known ones."""
    from ksmrepro.analysis.render import registry_renderable
    from ksmrepro.models.userfile import use_model_files
    from ksmrepro.report.console import make_console

    here = [os.path.join("scenarios", "-")] if os.path.isdir("scenarios") else []
    use_model_files(models_files, here)
    console = make_console()
    if not names:
        console.print(registry_renderable())
        return
    renderables = [_describe(n) for n in names]  # every name checked before printing
    for r in renderables:
        console.print(r)
