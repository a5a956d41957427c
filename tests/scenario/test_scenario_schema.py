"""scenario_schema(): a valid draft 2020-12 schema that agrees with the loader."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from ksmrepro.errors import ScenarioError
from ksmrepro.scenario import load_scenario_text, scenario_schema
from ksmrepro.scenario import loader as L
from ksmrepro.scenario import values as V
from ksmrepro.scenario.schema import kind_schemas

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
SCENARIO_FILES = sorted((ROOT / "scenarios").rglob("*.yaml")) + [DATA / "all_steps.yaml"]


@pytest.fixture(scope="module")
def validator():
    schema = scenario_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_draft_2020_12_and_json():
    schema = scenario_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(json.dumps(schema)) == schema
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_is_generated_from_the_loader_tables():
    schema = scenario_schema()
    defs = schema["$defs"]
    assert set(schema["properties"]) == set(L.TOP_LEVEL_KEYS)
    assert set(schema["properties"]["machine"]["properties"]) == set(L.MACHINE_KEYS)
    assert set(schema["properties"]["ksm"]["properties"]) == set(V.KSM_KNOBS)
    step_refs = [r["$ref"] for r in schema["properties"]["steps"]["items"]["oneOf"]]
    assert step_refs == [f"#/$defs/step_{k}" for k in L.STEP_SPECS]
    kinds = {a.kind for s in L.STEP_SPECS.values() for a in s.args}
    kinds |= {s.value_kind for s in L.STEP_SPECS.values() if s.value_kind}
    kinds |= {k for k, _ in L.COMMON_KEYS.values()} | {k for k, _ in L.MACHINE_KEYS.values()}
    assert kinds <= set(L.KINDS)
    assert kinds <= set(kind_schemas())
    for key, spec in L.STEP_SPECS.items():
        step = defs[f"step_{key}"]
        assert step["title"] == key and step["description"] == spec.description
        assert set(step["properties"]) == {key, *L.COMMON_KEYS}
    assert defs["advice"]["enum"] == list(V.ADVICE)
    assert {c["const"] for c in defs["counter"]["anyOf"]} == set(V.COUNTERS) | set(V.COUNTER_ALIASES)
    assert {c["const"] for c in defs["sysfs_path"]["anyOf"]} == set(V.SYSFS_PATHS)


def test_schema_has_descriptions_for_completion():
    schema = scenario_schema()
    for key, prop in schema["properties"].items():
        assert prop.get("description"), key
    mmap_args = schema["$defs"]["step_mmap"]["properties"]["mmap"]["properties"]
    assert all(a.get("description") for a in mmap_args.values())
    assert all(c.get("description") for c in schema["$defs"]["counter"]["anyOf"])


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_valid_scenarios_pass_schema_and_loader(validator, path):
    text = path.read_text()
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(text))]
    assert errors == []
    load_scenario_text(text, str(path))


def test_hugh_is_among_them():
    assert ROOT / "scenarios" / "hugh.yaml" in SCENARIO_FILES


VALID = [
    "name: a\nsteps: [{exit: }]\n",
    "name: a\nsteps:\n  - mmap: {as: b, length: 0x1000, prot: PROT_READ | PROT_WRITE}\n"
    "  - mremap: {old_addr: b, old_size: 1 page, new_size: 2 pages, flags: 0}\n",
    "name: a\nsteps:\n  - mmap: {as: b, length: 1 page}\n"
    "  - mremap: {old_addr: b, old_size: 1 page, new_size: 1 page,"
    " flags: 'MREMAP_MAYMOVE|MREMAP_FIXED', new_addr: b + 1 page}\n",
    "name: a\nsteps:\n  - {prctl: {option: PR_GET_MEMORY_MERGE}, label: read it}\n"
    "  - print: memory.current\n  - expect: {memory.current: '<= 0x100000'}\n",
    "name: a\nsteps:\n  - dump: all\n  - dump:\n  - dump: {what: maps}\n  - sleep: 1.5s\n",
    "name: a\nsteps:\n  - cgroup: {name: g, memory_max: max}\n"
    "  - {memory_reclaim: {cgroup: g, amount: 64M}, errno: EAGAIN}\n",
]


@pytest.mark.parametrize("text", VALID)
def test_more_valid_scenarios_pass_both(validator, text):
    assert list(validator.iter_errors(yaml.safe_load(text))) == []
    load_scenario_text(text)


MALFORMED = [
    "steps: [{exit: }]\n",  # no name
    "name: a\n",  # no steps
    "name: a\nsteps: []\n",
    "name: a\nsteps: {exit: }\n",
    "name: a\nstep: [{exit: }]\n",
    "name: [a]\nsteps: [{exit: }]\n",
    "name: a\nmachine: {memroy: 1G}\nsteps: [{exit: }]\n",
    "name: a\nmachine: {thp: sometimes}\nsteps: [{exit: }]\n",
    "name: a\nmachine: {cpus: 0}\nsteps: [{exit: }]\n",
    "name: a\nksm: {run: 5}\nsteps: [{exit: }]\n",
    "name: a\nksm: {runn: 1}\nsteps: [{exit: }]\n",
    "name: a\nmodels: [7]\nsteps: [{exit: }]\n",
    "name: a\nknown_failures: {x: 7}\nsteps: [{exit: }]\n",
    "name: a\nknown_failures: [x]\nsteps: [{exit: }]\n",
    "name: a\nsteps: [exit]\n",
    "name: a\nsteps: [{proc: main}]\n",
    "name: a\nsteps: [{exit: , sleep: 1s}]\n",
    "name: a\nsteps: [{madvice: {addr: 0, length: 1, advice: MADV_COLD}}]\n",
    "name: a\nsteps: [{madvise: {addr: 0, length: 1}}]\n",
    "name: a\nsteps: [{madvise: {addr: 0, length: 1, advice: MADV_MERGABLE}}]\n",
    "name: a\nsteps: [{madvise: {addr: 0, lenght: 1, advice: MADV_COLD}}]\n",
    "name: a\nsteps: [{madvise: {addr: 0, length: 1, advice: MADV_COLD, errno: EINVAL}}]\n",
    "name: a\nsteps: [{madvise: {addr: 0, length: 1, advice: MADV_COLD}, errno: EINVALL}]\n",
    "name: a\nsteps: [{read: {addr: 0, length: 1}, signal: SIGKILL}]\n",
    "name: a\nsteps: [{read: {addr: 0, length: 3 pagez}}]\n",
    "name: a\nsteps: [{read: {addr: 'base +', length: 1}}]\n",
    "name: a\nsteps: [{read: {addr: -4096, length: 1}}]\n",
    "name: a\nsteps: [{mmap: {as: my-base, length: 1}}]\n",
    "name: a\nsteps: [{mmap: {length: 1}}]\n",
    "name: a\nsteps: [{mmap: {as: a, length: 1, flags: [MAP_ANON]}}]\n",
    "name: a\nsteps: [{mmap: {as: a, length: 1, prot: 'PROT_READ||PROT_WRITE'}}]\n",
    "name: a\nsteps: [{mremap: {old_addr: 0, old_size: 1, new_size: 1, flags: [MREMAP_FIXED]}}]\n",
    "name: a\nsteps: [{mremap: {old_addr: 0, old_size: 1, new_size: 1, flags: 'MREMAP_MAYMOVE|MREMAP_FIXED'}}]\n",
    "name: a\nsteps: [{prctl: {option: PR_SET_MEMORY_MERGE}}]\n",
    "name: a\nsteps: [{prctl: {option: PR_SET_MEMORY_MERGER, value: 1}}]\n",
    "name: a\nsteps: [{memset: {addr: 0, value: 256, length: 1}}]\n",
    "name: a\nsteps: [{touch: {addr: 0, length: 1, times: 0}}]\n",
    "name: a\nsteps: [{sysfs: {path: /sys/kernel/mm/ksm/pages_shared, value: 1}}]\n",
    "name: a\nsteps: [{sysfs: {path: /sys/kernel/mm/ksm/run, value: [1]}}]\n",
    "name: a\nsteps: [{sleep: 1 hour}]\n",
    "name: a\nsteps: [{sleep: {duration: 1s}}]\n",
    "name: a\nsteps: [{ksm_wait: 2}]\n",
    "name: a\nsteps: [{print: [pages_shard]}]\n",
    "name: a\nsteps: [{print: []}]\n",
    "name: a\nsteps: [{expect: {}}]\n",
    "name: a\nsteps: [{expect: {pages_shared: '=> 1'}}]\n",
    "name: a\nsteps: [{expect: {pages_sharng: 1}}]\n",
    "name: a\nsteps: [{dump: {what: [page]}}]\n",
    "name: a\nsteps: [{dump: everything}]\n",
    "name: a\nsteps: [{exit: {code: 1}}]\n",
    "name: a\nsteps: [{pressure: {touches: 2}}]\n",
    "name: a\nsteps: [{cgroup: {name: 'a/b'}}]\n",
    "name: a\nsteps: [{fork: {child: kid, name: x}}]\n",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_scenarios_fail_both(validator, text):
    assert list(validator.iter_errors(yaml.safe_load(text))) != []
    with pytest.raises(ScenarioError):
        load_scenario_text(text)


def test_semantic_errors_are_the_loaders_alone(validator):
    # What no schema can see: the loader alone rejects these.
    for text in [
        "name: a\nsteps: [{read: {addr: base, length: 1}}]\n",
        "name: a\nsteps: [{exit: , proc: kid}]\n",
        "name: a\nsteps: [{cgroup_attach: {cgroup: g}}]\n",
    ]:
        assert list(validator.iter_errors(yaml.safe_load(text))) == []
        with pytest.raises(ScenarioError):
            load_scenario_text(text)


def test_schema_defaults_are_the_loaders():
    defs = scenario_schema()["$defs"]
    mmap = defs["step_mmap"]["properties"]["mmap"]["properties"]
    assert mmap["prot"]["default"] == ["PROT_READ", "PROT_WRITE"]
    assert mmap["flags"]["default"] == ["MAP_PRIVATE", "MAP_ANONYMOUS"]
    assert "default" not in mmap["as"]
    assert defs["step_touch"]["properties"]["touch"]["properties"]["times"]["default"] == 1
    assert defs["step_pressure"]["properties"]["pressure"]["properties"]["touches"]["default"] == 2
    assert defs["step_prctl"]["properties"]["prctl"]["properties"]["value"]["default"] == 0
    (st,) = load_scenario_text("name: a\nsteps: [{prctl: {option: PR_GET_MEMORY_MERGE}}]\n").steps
    assert st.value == 0


def test_non_string_known_failure_keys_rejected_by_both(validator):
    text = "name: a\nknown_failures: {7.0: reason}\nsteps: [{exit: }]\n"
    assert list(validator.iter_errors(yaml.safe_load(text))) != []
    with pytest.raises(ScenarioError, match="quote it"):
        load_scenario_text(text)
