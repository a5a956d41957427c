"""Model files: "my tree" as YAML, without touching the package (docs/models.md).

::

    kind: models
    models:
      my-tree:                         # a name for ``--model``, ``models:``, ``--good``...
        base: v7.0-rc6                 # a base or a named model
        patches: [ksm-pte-mkold]       # applied in this order
        knobs: {pages_to_scan: 200}    # /sys/kernel/mm/ksm/* at boot (the scenario's ksm: wins)
        summary: what this tree is
    patches:                           # optional: a local patch = switch values
      my-no-young:
        title: "ksm: my local testing patch"
        reference: my tree, commit 0123abcd
        function: replace_page
        explanation: why it matters
        sets: {ksm_replace_pte_young: false}
        requires: []
    series:                            # optional: what ``bisect --series`` walks
      my-series:
        base: v7.0-rc6
        patches: [ksm-rmap-walk-address-range, my-no-young]

A file is read with :func:`load_model_file` into a :class:`~ksmrepro.models.registry.ModelFile`
and installed in the registry; every error is a :class:`~ksmrepro.errors.ModelError` with the
file's ``path:line:column``.  Model files are found by :func:`model_files_near` next to
scenarios (``models/*.yaml`` in the scenario's directory or the ``scenarios/`` directory above
it) and given with ``--models-file``.
"""

from __future__ import annotations

import os
import re
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ksmrepro.errors import ModelError
from ksmrepro.models import registry
from ksmrepro.models.base import Patch, Switches

if TYPE_CHECKING:
    from collections.abc import Iterable

    from yaml.nodes import Node

__all__ = [
    "MODEL_FILE_SUFFIXES",
    "declares_kind_models",
    "is_model_file",
    "load_model_file",
    "ensure_model_files_near",
    "load_model_text",
    "model_files_near",
    "use_model_files",
]

MODEL_FILE_SUFFIXES = (".yaml", ".yml")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_KIND_MODELS = re.compile(r"^kind[ \t]*:[ \t]*['\"]?models\b", re.MULTILINE)

TOP_KEYS = ("kind", "description", "models", "patches", "series")
MODEL_KEYS = ("base", "patches", "knobs", "summary")
PATCH_KEYS = ("title", "reference", "function", "explanation", "sets", "requires")
SERIES_KEYS = ("base", "patches", "summary")


def _switch_values() -> dict[str, tuple[type, set[Any]]]:
    # A switch's type, and for a string switch the values the kernel knows: the ones some
    # built-in base or patch uses (a typo must not silently select the default branch).
    out: dict[str, tuple[type, set[Any]]] = {}
    for f in fields(Switches):
        default = getattr(Switches(), f.name)
        out[f.name] = (type(default), {default})
    for b in registry.BASES.values():
        for name, (_, seen) in out.items():
            seen.add(getattr(b.switches, name))
    for p in registry.PATCHES.values():
        for name, value in p.sets.items():
            if name in out:
                out[name][1].add(value)
    return out


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.where: dict[tuple[str, str], str] = {}

    def fail(self, node: Node | None, message: str) -> NoReturn:
        if node is None:
            raise ModelError(f"{self.path}: {message}")
        m = node.start_mark
        raise ModelError(f"{self.path}:{m.line + 1}:{m.column + 1}: {message}")

    def pos(self, node: Node) -> str:
        m = node.start_mark
        return f"{self.path}:{m.line + 1}:{m.column + 1}"

    def scalar(self, node: Node) -> Any:
        from yaml.constructor import ConstructorError, SafeConstructor
        from yaml.nodes import ScalarNode

        if not isinstance(node, ScalarNode):
            return node
        try:
            return SafeConstructor().construct_object(node, deep=True)
        except ConstructorError as exc:
            self.fail(node, f"bad value: {exc.problem}")

    def describe(self, node: Node) -> str:
        from yaml.nodes import MappingNode, SequenceNode

        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        v = self.scalar(node)
        return "nothing" if v is None else f"{type(v).__name__} {v!r}"

    def mapping(self, node: Node, ctx: str, keys: tuple[str, ...] | None = None,
                ) -> list[tuple[str, Node, Node]]:
        from yaml.nodes import MappingNode

        if not isinstance(node, MappingNode):
            self.fail(node, f"{ctx}expected a mapping, found {self.describe(node)}")
        out: list[tuple[str, Node, Node]] = []
        seen: set[str] = set()
        for knode, vnode in node.value:
            key = self.scalar(knode)
            if not isinstance(key, str):
                self.fail(knode, f"{ctx}expected a string key, found {self.describe(knode)}")
            if key in seen:
                self.fail(knode, f"{ctx}{key!r} appears twice")
            seen.add(key)
            if keys is not None and key not in keys:
                import difflib

                close = difflib.get_close_matches(key, keys, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of: " \
                    f"{', '.join(keys)}"
                self.fail(knode, f"{ctx}unknown key {key!r}; {hint}")
            out.append((key, knode, vnode))
        return out

    def string(self, node: Node, ctx: str) -> str:
        v = self.scalar(node)
        if not isinstance(v, str) or not v.strip():
            self.fail(node, f"{ctx}expected a non-empty string, found {self.describe(node)}")
        return " ".join(v.split())

    def name(self, node: Node, ctx: str, what: str) -> str:
        v = self.scalar(node)
        if not isinstance(v, str) or not NAME_RE.match(v):
            self.fail(node, f"{ctx}expected a {what} name (letters, digits, '.', '_', '-'; "
                            f"no '+'), found {self.describe(node)}")
        return v

    def names(self, node: Node, ctx: str, what: str) -> tuple[str, ...]:
        from yaml.nodes import SequenceNode

        if not isinstance(node, SequenceNode):
            v = self.scalar(node)
            if isinstance(v, str):  # `patches: a+b` or `patches: a`
                return tuple(self.name_text(node, ctx, what, p) for p in v.split("+"))
            self.fail(node, f"{ctx}expected a list of {what} names, found {self.describe(node)}")
        return tuple(self.name(n, ctx, what) for n in node.value)

    def name_text(self, node: Node, ctx: str, what: str, text: str) -> str:
        text = text.strip()
        if not NAME_RE.match(text):
            self.fail(node, f"{ctx}expected {what} names, found {text!r}")
        return text

    def expression(self, node: Node, ctx: str) -> str:
        v = self.scalar(node)
        if not isinstance(v, str) or not all(NAME_RE.match(p.strip()) for p in v.split("+")):
            self.fail(node, f"{ctx}expected a base or model name (or BASE+PATCH...), "
                            f"found {self.describe(node)}")
        return "+".join(p.strip() for p in v.split("+"))

    # --- sections ------------------------------------------------------------------------
    def read(self, text: str) -> registry.ModelFile:
        import yaml

        try:
            root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"{self.path}:{mark.line + 1}:{mark.column + 1}" if mark else self.path
            raise ModelError(f"{where}: not valid YAML: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise ModelError(f"{self.path}: not valid YAML: {exc}") from None
        if root is None:
            self.fail(None, "empty file; a model file starts with `kind: models`")
        top = {k: (kn, vn) for k, kn, vn in self.mapping(root, "", TOP_KEYS)}
        if "kind" not in top:
            self.fail(root, "not a model file: expected `kind: models` at the top")
        if self.scalar(top["kind"][1]) != "models":
            self.fail(top["kind"][1], f"kind: expected 'models', found "
                                      f"{self.describe(top['kind'][1])}")
        if not any(k in top for k in ("models", "patches", "series")):
            self.fail(root, "a model file defines models:, patches: or series: (none found)")
        patches = self.patches(top["patches"][1]) if "patches" in top else ()
        models = self.models(top["models"][1]) if "models" in top else ()
        series = self.series(top["series"][1]) if "series" in top else ()
        return registry.ModelFile(self.path, models, patches, series, self.where)

    def models(self, node: Node) -> tuple[registry.NamedModel, ...]:
        from ksmrepro.scenario.values import KSM_KNOBS

        out = []
        for name, knode, vnode in self.mapping(node, "models: "):
            name = self.name(knode, "models: ", "model")
            ctx = f"models.{name}: "
            self.where[("model", name)] = self.pos(knode)
            d = {k: (kn, vn) for k, kn, vn in self.mapping(vnode, ctx, MODEL_KEYS)}
            if "base" not in d:
                self.fail(vnode, f"{ctx}missing base: (a base such as "
                                 f"{', '.join(sorted(registry.BASES))}, or a named model)")
            expr = self.expression(d["base"][1], f"{ctx}base: ")
            patches = self.names(d["patches"][1], f"{ctx}patches: ", "patch") \
                if "patches" in d else ()
            knobs: list[tuple[str, Any]] = []
            if "knobs" in d:
                for knob, kkn, kvn in self.mapping(d["knobs"][1], f"{ctx}knobs: "):
                    if knob not in KSM_KNOBS:
                        import difflib

                        close = difflib.get_close_matches(knob, KSM_KNOBS, n=1)
                        hint = f"did you mean {close[0]!r}?" if close else \
                            f"expected one of: {', '.join(KSM_KNOBS)}"
                        self.fail(kkn, f"{ctx}knobs: unknown knob {knob!r}; {hint}")
                    knobs.append((knob, self.knob(kvn, f"{ctx}knobs.{knob}: ",
                                                  KSM_KNOBS[knob][1])))
            summary = self.string(d["summary"][1], f"{ctx}summary: ") if "summary" in d else ""
            out.append(registry.NamedModel(name, "+".join((expr, *patches)), summary,
                                           tuple(knobs), self.path))
        return tuple(out)

    def knob(self, node: Node, ctx: str, allowed: tuple[Any, ...] | None) -> int | str:
        v = self.scalar(node)
        if allowed is None:
            if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
                return v
            self.fail(node, f"{ctx}expected an integer >= 0, found {self.describe(node)}")
        if v in allowed and not isinstance(v, bool) and isinstance(v, type(allowed[0])):
            return v
        return self.fail(node, f"{ctx}expected one of {', '.join(map(str, allowed))}, "
                               f"found {self.describe(node)}")

    def patches(self, node: Node) -> tuple[Patch, ...]:
        switches = _switch_values()
        out = []
        for name, knode, vnode in self.mapping(node, "patches: "):
            name = self.name(knode, "patches: ", "patch")
            ctx = f"patches.{name}: "
            self.where[("patch", name)] = self.pos(knode)
            d = {k: (kn, vn) for k, kn, vn in self.mapping(vnode, ctx, PATCH_KEYS)}
            if "title" not in d:
                self.fail(vnode, f"{ctx}missing title: (the patch's subject line)")
            text = {k: self.string(d[k][1], f"{ctx}{k}: ") for k in
                    ("title", "reference", "function", "explanation") if k in d}
            sets: dict[str, Any] = {}
            if "sets" in d:
                for sw, skn, svn in self.mapping(d["sets"][1], f"{ctx}sets: "):
                    if sw not in switches:
                        import difflib

                        close = difflib.get_close_matches(sw, switches, n=1)
                        hint = f"did you mean {close[0]!r}?" if close else \
                            f"expected one of: {', '.join(switches)}"
                        self.fail(skn, f"{ctx}sets: unknown switch {sw!r}; {hint}")
                    sets[sw] = self.switch(svn, f"{ctx}sets.{sw}: ", *switches[sw])
            requires = self.names(d["requires"][1], f"{ctx}requires: ", "patch") \
                if "requires" in d else ()
            out.append(Patch(name=name, title=text["title"],
                             reference=text.get("reference", f"model file {self.path}"),
                             function=text.get("function", ""),
                             explanation=text.get("explanation", ""),
                             sets=sets, requires=requires))
        return tuple(out)

    def switch(self, node: Node, ctx: str, kind: type, known: set[Any]) -> Any:
        v = self.scalar(node)
        if kind is bool:
            if isinstance(v, bool):
                return v
            self.fail(node, f"{ctx}expected true or false, found {self.describe(node)}")
        if kind is int:
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                return v
            self.fail(node, f"{ctx}expected an integer > 0, found {self.describe(node)}")
        if isinstance(v, str) and v in known:
            return v
        return self.fail(node, f"{ctx}expected one of {', '.join(sorted(map(str, known)))}, "
                               f"found {self.describe(node)}")

    def series(self, node: Node) -> tuple[registry.Series, ...]:
        out = []
        for name, knode, vnode in self.mapping(node, "series: "):
            name = self.name(knode, "series: ", "series")
            ctx = f"series.{name}: "
            self.where[("series", name)] = self.pos(knode)
            d = {k: (kn, vn) for k, kn, vn in self.mapping(vnode, ctx, SERIES_KEYS)}
            for key in ("base", "patches"):
                if key not in d:
                    self.fail(vnode, f"{ctx}missing {key}:")
            base = self.expression(d["base"][1], f"{ctx}base: ")
            patches = self.names(d["patches"][1], f"{ctx}patches: ", "patch")
            if not patches:
                self.fail(d["patches"][1], f"{ctx}patches: expected at least one patch")
            summary = self.string(d["summary"][1], f"{ctx}summary: ") if "summary" in d else ""
            out.append(registry.Series(name, base, patches, summary, self.path))
        return tuple(out)


_MTIMES: dict[str, int] = {}  # realpath -> st_mtime_ns when it was installed


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def load_model_text(text: str, path: str = "<memory>") -> registry.ModelFile:
    """Parse a model file's text (nothing is installed).

    :raises ModelError: ``path:line:column: message``
    """
    return _Reader(path).read(text)


def load_model_file(path: str | os.PathLike[str], *, install: bool = True) -> registry.ModelFile:
    """Read a model file and (by default) install its definitions in the registry.

    :raises ModelError: the file cannot be read, is invalid, or clashes with known names
    """
    p = os.fspath(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ModelError(f"{p}: cannot read model file: {reason}") from None
    mf = load_model_text(text, p)
    if install:
        registry.install_model_file(mf)
        _MTIMES[os.path.realpath(p)] = _mtime(p)
    return mf


def is_model_file(path: str | os.PathLike[str]) -> bool:
    """A ``*.yaml``/``*.yml`` file that declares ``kind: models`` (never raises)."""
    p = Path(path)
    if p.suffix not in MODEL_FILE_SUFFIXES or not p.is_file():
        return False
    try:
        return declares_kind_models(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False


def declares_kind_models(text: str) -> bool:
    """True when YAML text has a top-level ``kind: models`` line (decided on the text, so it
    also answers for a file that does not parse)."""
    return bool(_KIND_MODELS.search(text))


def model_files_near(scenario_path: str | os.PathLike[str]) -> list[str]:
    """Model files that belong to a scenario: the ``*.yaml``/``*.yml`` files declaring
    ``kind: models`` in ``models/`` next to the scenario, then in ``models/`` of the nearest
    directory above it named ``scenarios`` (``scenarios/models/`` serves every scenario under
    ``scenarios/``).  Sorted by name within a directory; paths relative when the scenario's
    is."""
    start = os.path.dirname(os.fspath(scenario_path)) or "."
    dirs = [start]
    d, absolute = start, Path(os.path.abspath(start))
    while True:
        if absolute.name == "scenarios":
            if d != start:
                dirs.append(d)
            break
        if absolute.parent == absolute:
            break
        d, absolute = os.path.join(d, ".."), absolute.parent
    out: list[str] = []
    for d in dirs:
        models_dir = Path(d) / "models"
        if models_dir.is_dir():
            out += [os.path.normpath(f) for f in sorted(models_dir.iterdir()) if is_model_file(f)]
    return out


def ensure_model_files_near(scenario_path: str | os.PathLike[str]) -> list[str]:
    """Install the model files next to a scenario unless they already are (and unchanged).

    Unlike :func:`use_model_files`, this keeps what is installed: ``collect.plan`` calls it
    for every scenario it plans, after the command line's ``--models-file`` were installed.
    """
    if not os.path.isfile(scenario_path):
        return []  # a scenario built in memory ("<memory>") has no directory
    installed = {os.path.realpath(mf.path): mf.path for mf in registry.user_state()}
    files = model_files_near(scenario_path)
    for f in files:
        real = os.path.realpath(f)
        if real not in installed or _MTIMES.get(real) != _mtime(f):
            load_model_file(installed.get(real, f))
    return files


def use_model_files(explicit: Iterable[str], scenario_paths: Iterable[str] = ()) -> list[str]:
    """Install exactly these model files: ``explicit`` ones (``--models-file``), then those
    next to the scenarios.  Definitions from earlier calls are dropped first.

    :returns: the files installed, in order
    :raises ModelError: a missing, unreadable or invalid file, or a name defined twice
    """
    files: list[str] = []
    seen: set[str] = set()
    for f in list(explicit) + [m for s in scenario_paths for m in model_files_near(s)]:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            files.append(f)
    registry.reset_user_models()
    for f in files:
        if not os.path.exists(f):
            raise ModelError(f"{f}: no such model file")
        load_model_file(f)
    return files
