"""JSON Schema (draft 2020-12) of the scenario format, for editors and other tools.

Generated from the loader's tables (:data:`~ksmrepro.scenario.loader.STEP_SPECS`,
:data:`~ksmrepro.scenario.loader.KINDS`, the constant sets and counters of
:mod:`ksmrepro.scenario.values`), so it accepts what ``load_scenario`` accepts.  It checks
structure only: the loader also checks what a schema cannot (names bound before use, live
processes, existing cgroups, the CPU count).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ksmrepro.scenario import values as V
from ksmrepro.scenario.loader import (
    COMMON_KEYS,
    KINDS,
    MACHINE_KEYS,
    STEP_SPECS,
    TOP_LEVEL_KEYS,
    ArgSpec,
    Requirement,
    StepSpec,
)

__all__ = ["SCHEMA_ID", "kind_schemas", "scenario_schema"]

SCHEMA_ID = "urn:ksmrepro:scenario:1"

_Schema = dict[str, Any]


def _ref(name: str, description: str = "") -> _Schema:
    ref: _Schema = {"$ref": f"#/$defs/{name}"}
    if description:
        ref["description"] = description
    return ref


def _pattern(pattern: str) -> _Schema:
    return {"type": "string", "pattern": V.anchored(pattern)}


def _flags(names: tuple[str, ...], zero_ok: bool) -> _Schema:
    one = {"anyOf": [{"enum": list(names)}, _pattern(V.flags_pattern(names))]}
    forms: list[_Schema] = [{"type": "array", "items": one}, one]
    if zero_ok:
        forms.append({"const": 0, "description": "no flags"})
    return {"anyOf": forms}


def _named(table: dict[str, str]) -> _Schema:
    """One of ``table``'s names, each with its description (for editor completion)."""
    return {"anyOf": [{"const": k, "description": d} for k, d in table.items()]}


def kind_schemas() -> dict[str, _Schema]:
    """The schema of every value kind in :data:`~ksmrepro.scenario.loader.KINDS`."""
    size = {"anyOf": [{"type": "integer", "minimum": 0}, _pattern(V.SIZE_PATTERN)]}
    proc = {"type": "string", "pattern": f"^{V.PROC_PATTERN}$"}
    counter = _named({**V.COUNTERS, **{a: V.COUNTERS[n] for a, n in V.COUNTER_ALIASES.items()}})
    comparison = {"anyOf": [{"type": "integer"}, _pattern(V.COMPARISON_PATTERN)]}
    schemas: dict[str, _Schema] = {
        "size": size,
        "addr": {"anyOf": [{"type": "integer", "minimum": 0}, _pattern(V.ADDR_PATTERN)]},
        "bind": {"type": "string", "pattern": f"^{V.NAME_PATTERN}$"},
        "new_proc": proc,
        "new_cgroup": proc,
        "cgroup": {"type": "string", "minLength": 1},
        "memory_max": {"anyOf": [{"const": "max"}, _ref("size")]},
        "advice": {"enum": list(V.ADVICE)},
        "prot": _flags(V.PROT_FLAGS, False),
        "map_flags": _flags(V.MAP_FLAGS, False),
        "mremap_flags": _flags(V.MREMAP_FLAGS, True),
        "byte": {"type": "integer", "minimum": 0, "maximum": 255},
        "count": {"type": "integer", "minimum": 1},
        "cpu": {"type": "integer", "minimum": 0},
        "int": {"type": "integer"},
        "prctl_option": {"enum": list(V.PRCTL_OPTIONS)},
        "sysfs_path": _named(V.SYSFS_PATHS),
        "sysfs_value": {"type": ["string", "integer"]},
        "duration": {"anyOf": [{"type": "integer", "minimum": 0}, _pattern(V.DURATION_PATTERN)]},
        "counter": counter,
        "comparison": comparison,
        "counters": {"anyOf": [
            {"const": "all", "description": "every counter"},
            _ref("counter"),
            {"type": "array", "items": _ref("counter"), "minItems": 1, "uniqueItems": True},
        ]},
        "expect": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": _ref("counter"),
            "properties": {k: _ref("comparison", d) for k, d in V.COUNTERS.items()},
            "additionalProperties": _ref("comparison"),
        },
        "dump_what": {"anyOf": [
            {"const": "all"},
            {"enum": list(V.DUMP_WHAT)},
            {"type": "array", "items": {"enum": list(V.DUMP_WHAT)}, "minItems": 1},
        ]},
        "proc": {"type": "string", "minLength": 1},
        "label": {"type": "string", "minLength": 1},
        "errno": {"enum": list(V.ERRNOS)},
        "signal": {"enum": list(V.SIGNALS)},
        "thp": {"enum": list(V.THP_MODES)},
        "costs": {"enum": list(V.COST_PROFILES)},
    }
    for kind, schema in schemas.items():
        if kind in KINDS:
            schema.setdefault("description", KINDS[kind])
    return schemas


def _contains_constant(kind: str, constant: str) -> _Schema:
    """A schema matching an argument of ``kind`` whose value is, or includes, ``constant``."""
    if not kind.endswith("flags") and kind != "prot":
        return {"const": constant}
    word = rf"(^|\|)\s*{constant}\s*(\||$)"
    return {"anyOf": [
        {"type": "array", "contains": {"type": "string", "pattern": word}},
        {"type": "string", "pattern": word},
    ]}


def _requirement(spec: StepSpec, req: Requirement) -> _Schema:
    kind = next(a.kind for a in spec.args if a.name == req.when)
    return {
        "if": {"properties": {req.when: _contains_constant(kind, req.constant)},
               "required": [req.when]},
        "then": {"required": [req.then]},
    }


def _arg(spec: StepSpec, arg: ArgSpec) -> _Schema:
    """An argument's schema, with its default when the step has one."""
    schema = _ref(arg.kind, arg.description)
    default: Any = arg.default
    if default is None and not arg.required:
        field = next(f for f in dataclasses.fields(spec.cls) if f.name == arg.attr)
        default = None if field.default is dataclasses.MISSING else field.default
    if default is not None:
        schema["default"] = list(default) if isinstance(default, tuple) else default
    return schema


def _step_value(spec: StepSpec) -> _Schema:
    if spec.value_kind:
        return _ref(spec.value_kind, spec.description)
    args: _Schema = {
        "type": "object",
        "properties": {a.name: _arg(spec, a) for a in spec.args},
        "additionalProperties": False,
    }
    if spec.args:
        args["required"] = [a.name for a in spec.args if a.required]
    if spec.requires:
        args["allOf"] = [_requirement(spec, r) for r in spec.requires]
    forms = [args]
    if spec.null_ok:
        forms.append({"type": "null"})
    if spec.all_ok:
        forms.append({"const": "all"})
    return {"description": spec.description, "anyOf": forms} if len(forms) > 1 else \
        {"description": spec.description, **args}


def _step(spec: StepSpec) -> _Schema:
    common = {k: _ref(kind, d) for k, (kind, d) in COMMON_KEYS.items()}
    return {
        "title": spec.key,
        "description": spec.description,
        "type": "object",
        "properties": {spec.key: _step_value(spec), **common},
        "required": [spec.key],
        "additionalProperties": False,
    }


def _ksm_knobs() -> _Schema:
    props: dict[str, _Schema] = {}
    for knob, (description, allowed) in V.KSM_KNOBS.items():
        value: _Schema = ({"type": "integer", "minimum": 0} if allowed is None
                          else {"enum": list(allowed)})
        props[knob] = {"description": description, **value}
    return {"type": "object", "description": TOP_LEVEL_KEYS["ksm"], "properties": props,
            "additionalProperties": False}


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, as a JSON-serialisable dict."""
    defs: dict[str, _Schema] = kind_schemas()
    defs.update({f"step_{k}": _step(s) for k, s in STEP_SPECS.items()})
    names = {"type": "string", "minLength": 1}

    def one_or_more() -> _Schema:
        return {"anyOf": [names, {"type": "array", "items": names}]}

    properties: dict[str, _Schema] = {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": ["string", "null"]},
        "source": {"type": ["string", "null"]},
        "tags": one_or_more(),
        "machine": {
            "type": "object",
            "properties": {k: _ref(kind, d) for k, (kind, d) in MACHINE_KEYS.items()},
            "additionalProperties": False,
        },
        "ksm": _ksm_knobs(),
        "models": one_or_more(),
        "known_failures": {
            "type": "object",
            "propertyNames": {"type": "string", "minLength": 1},
            "additionalProperties": {"type": "string", "minLength": 1},
        },
        "steps": {
            "type": "array",
            "minItems": 1,
            "items": {"oneOf": [_ref(f"step_{k}") for k in STEP_SPECS]},
        },
    }
    for key, schema in properties.items():
        schema.setdefault("description", TOP_LEVEL_KEYS[key])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "ksmrepro scenario",
        "description": "A kernel testcase as YAML steps (docs/scenario-format.md)",
        "type": "object",
        "required": ["name", "steps"],
        "properties": properties,
        "additionalProperties": False,
        "$defs": defs,
    }
