"""Malformed scenarios: every error is a ScenarioError with file:line:column and a clear message.

The expected strings are exact: the position is the offending node (1-based), the message says
what was found and what was expected, with 'did you mean' for misspellings.
"""

import pytest

from ksmrepro.errors import ScenarioError
from ksmrepro.scenario import load_scenario, load_scenario_text

H = "name: x\nsteps:\n  - mmap: {as: base, length: 3 pages}\n"

CASES = [
    pytest.param(H + '  - madvise: {addr: base, length: 3 pages, advice: MADV_MERGABLE}\n',
                 "s.yaml:4:52: step 1 (madvise): unknown advice 'MADV_MERGABLE'; did you mean 'MADV_MERGEABLE'?",
                 id='advice'),
    pytest.param(H + '  - madvice: {addr: base, length: 1 page, advice: MADV_COLD}\n',
                 "s.yaml:4:5: step 1: unknown step 'madvice'; did you mean 'madvise'?",
                 id='stepname'),
    pytest.param(H + '  - madvise:\n      addr: base\n      lenght: 1 page\n      advice: MADV_COLD\n',
                 "s.yaml:6:7: step 1 (madvise): unknown argument 'lenght'; did you mean 'length'?",
                 id='argname'),
    pytest.param(H + '  - madvise: {addr: base, advice: MADV_COLD}\n',
                 "s.yaml:4:5: step 1 (madvise): missing argument 'length'; expected addr, length, advice",
                 id='missing'),
    pytest.param(H + '  - memset: {addr: base2 + 1 page, value: 1, length: 1 page}\n',
                 "s.yaml:4:20: step 1 (memset): addr: name 'base2' is not bound in process 'main' (bind it with 'as:' in an earlier mmap or mremap); did you mean 'base'? names bound in 'main': base",
                 id='unbound'),
    pytest.param('name: x\nsteps:\n  - mmap: {as: a, length: 1 page}\nname: y\n',
                 "s.yaml:4:1: duplicate key 'name' (first at line 1, column 1); expected each key once",
                 id='dupkey'),
    pytest.param(H + '  - madvise: {addr: base, addr: base, length: 1, advice: MADV_COLD}\n',
                 "s.yaml:4:27: step 1 (madvise): duplicate key 'addr' (first at line 4, column 15); expected each key once",
                 id='dupargs'),
    pytest.param('name: x\nstep:\n  - exit:\n',
                 "s.yaml:2:1: unknown top-level key 'step'; did you mean 'steps'?",
                 id='toplevel'),
    pytest.param(H + '  - mmap: {as: a, length: 1}\n    munmap: {addr: a, length: 1}\n',
                 "s.yaml:5:5: step 1: more than one step key ('mmap', 'munmap'); expected exactly one (write each call as its own '- ' item)",
                 id='twokeys'),
    pytest.param(H + '  - proc: main\n    label: nothing\n',
                 's.yaml:4:5: step 1: no step key; expected one of: mmap, munmap, madvise, mremap, mprotect, memset, touch, read, fork, spawn, exit, prctl, sysfs, sleep, ksm_wait, pressure, print, expect, cgroup, cgroup_attach, memory_reclaim, dump',
                 id='nokey'),
    pytest.param(H + '  - mmap: {as: b, length: [1]}\n',
                 "s.yaml:4:27: step 1 (mmap): length: expected a size: bytes (4096, 0x1000), '3 pages', '1 page', '512K', '2M' or '1G', found a list",
                 id='type'),
    pytest.param(H + '  - mmap: {as: b, length: !!python/name:os.system }\n',
                 "s.yaml:4:27: unsupported YAML tag '!!python/name:os.system'; expected plain YAML values (strings, numbers, lists, mappings)",
                 id='tag'),
    pytest.param('name: !secret x\nsteps: [{exit: }]\n',
                 "s.yaml:1:7: unsupported YAML tag '!secret'; expected plain YAML values (strings, numbers, lists, mappings)",
                 id='customtag'),
    pytest.param('name: x\nsteps:\n  - mmap: {as: base, length: 1}\n   madvise: {}\n',
                 "s.yaml:4:4: invalid YAML: expected <block end>, but found '<block mapping start>' (while parsing a block collection at line 3, column 3); check the indentation",
                 id='indent'),
    pytest.param('name: x\nsteps:\n\t- exit:\n',
                 "s.yaml:3:1: invalid YAML: found character '\\t' that cannot start any token (while scanning for the next token); YAML indentation must use spaces, not tabs",
                 id='tab'),
    pytest.param('name: x\nsteps:\n  - mmap: {as: base, length: 1\n  - exit:\n',
                 "s.yaml:4:9: invalid YAML: expected ',' or '}', but got ':' (while parsing a flow mapping at line 3, column 11)",
                 id='unclosed'),
    pytest.param('name: x\nsteps:\n  - mmap: {as: base, length: 1}\n  - madvise: addr: base\n',
                 "s.yaml:4:18: invalid YAML: mapping values are not allowed here; check the indentation, or quote a value with ': '",
                 id='colon'),
    pytest.param(H + '  - expect:\n      pages_shared: 1\n      pages_sharng: 1\n',
                 "s.yaml:6:7: step 1 (expect): unknown counter 'pages_sharng'; did you mean 'pages_sharing'?",
                 id='counter'),
    pytest.param(H + '  - sysfs: {path: /sys/kernel/mm/ksm/sleep_milisecs, value: 0}\n',
                 "s.yaml:4:19: step 1 (sysfs): path: unknown sysfs path '/sys/kernel/mm/ksm/sleep_milisecs'; did you mean '/sys/kernel/mm/ksm/sleep_millisecs'?",
                 id='sysfs'),
    pytest.param(H + '  - mremap: {old_addr: base, old_size: 1 page, new_size: 2 pages, flags: [MREMAP_MAYMOVE, MREMAP_DONTUNMAPP]}\n',
                 "s.yaml:4:91: step 1 (mremap): unknown mremap flag 'MREMAP_DONTUNMAPP'; did you mean 'MREMAP_DONTUNMAP'?",
                 id='const_mremap'),
    pytest.param(H + '  - mprotect: {addr: base, length: 1 page, prot: PROT_READ|PROT_WIRTE}\n',
                 "s.yaml:4:50: step 1 (mprotect): unknown prot flag 'PROT_WIRTE'; did you mean 'PROT_WRITE'?",
                 id='prot'),
    pytest.param(H + '  - mmap: {as: b, length: 1 page, flags: [MAP_PRIVATE, MAP_ANON]}\n',
                 "s.yaml:4:56: step 1 (mmap): unknown mmap flag 'MAP_ANON'; did you mean 'MAP_ANONYMOUS'?",
                 id='mapflag'),
    pytest.param(H + '  - prctl: {option: PR_SET_MEMORY_MERG, value: 1}\n',
                 "s.yaml:4:21: step 1 (prctl): unknown prctl option 'PR_SET_MEMORY_MERG'; did you mean 'PR_SET_MEMORY_MERGE'?",
                 id='prctl'),
    pytest.param(H + '  - fork: {child: kid}\n  - {exit: , proc: kdi}\n',
                 "s.yaml:5:20: step 2 (exit): unknown process 'kdi'; did you mean 'kid'?",
                 id='proc'),
    pytest.param(H + '  - fork: {child: kid}\n  - {exit: , proc: kid}\n  - {read: {addr: base, length: 1}, proc: kid}\n',
                 "s.yaml:6:43: step 3 (read): process 'kid' exited at step 2; expected a live process: main",
                 id='exited'),
    pytest.param(H + '  - spawn: {name: other}\n  - {read: {addr: base, length: 1}, proc: other}\n',
                 "s.yaml:5:19: step 2 (read): addr: name 'base' is not bound in process 'other' (bind it with 'as:' in an earlier mmap or mremap); no names are bound in process 'other' yet",
                 id='spawn_empty'),
    pytest.param(H + '  - cgroup: {name: grp}\n  - cgroup_attach: {cgroup: gpr}\n',
                 "s.yaml:5:29: step 2 (cgroup_attach): cgroup: cgroup 'gpr' does not exist (make it with an earlier 'cgroup' step); did you mean 'grp'?",
                 id='cgroup'),
    pytest.param('name: x\nmachine: {memroy: 1G}\nsteps: [{exit: }]\n',
                 "s.yaml:2:11: machine: unknown key 'memroy'; did you mean 'memory'?",
                 id='machine'),
    pytest.param('name: x\nmachine: {thp: alwyas}\nsteps: [{exit: }]\n',
                 "s.yaml:2:16: machine.thp: unknown thp mode 'alwyas'; did you mean 'always'?",
                 id='thp'),
    pytest.param('name: x\nmachine: {costs: qemu-kvm}\nsteps: [{exit: }]\n',
                 "s.yaml:2:18: machine.costs: unknown cost profile 'qemu-kvm'; did you mean 'qemu-tcg'?",
                 id='costs'),
    pytest.param('name: x\nksm: {pages_to_scna: 100}\nsteps: [{exit: }]\n',
                 "s.yaml:2:7: ksm: unknown knob 'pages_to_scna'; did you mean 'pages_to_scan'?",
                 id='ksm'),
    pytest.param('name: x\nksm: {run: 3}\nsteps: [{exit: }]\n',
                 's.yaml:2:12: ksm.run: expected one of 0, 1, 2, found the integer 3',
                 id='ksm_run'),
    pytest.param('name: x\nknown_failures: {7.0: reason}\nsteps: [{exit: }]\n',
                 's.yaml:2:18: known_failures: expected a string key, found the number 7.0 (quote it to make it a string)',
                 id='known'),
    pytest.param('name: x\nmodels: [v7.0-rc6, 7]\nsteps: [{exit: }]\n',
                 's.yaml:2:20: models: expected a string, found the integer 7 (quote it to make it a string)',
                 id='models'),
    pytest.param('',
                 "s.yaml:1:1: empty scenario; expected a mapping with 'name' and 'steps'",
                 id='empty'),
    pytest.param('- exit:\n',
                 "s.yaml:1:1: expected a scenario: a mapping with 'name' and 'steps', found a list",
                 id='notmap'),
    pytest.param('steps: [{exit: }]\n',
                 "s.yaml:1:1: missing top-level key 'name'; a scenario needs 'name' and 'steps'",
                 id='noname'),
    pytest.param('name: x\nsteps: []\n',
                 's.yaml:2:8: steps: expected at least one step, found an empty list',
                 id='nosteps'),
    pytest.param('name: x\nsteps:\n  - exit\n',
                 "s.yaml:3:5: step 0: expected a mapping with one step key, found the string 'exit'; did you mean 'exit: {}'?",
                 id='stepstr'),
    pytest.param('name: x\nsteps:\n  - sleep: 1 hour\n',
                 "s.yaml:3:12: step 0 (sleep): bad duration '1 hour'; expected a duration: '1s', '20ms', '500us', '100ns', or an integer of milliseconds",
                 id='sleep'),
    pytest.param(H + '  - {munmap: {addr: base, length: 1}, errno: EINVALL}\n',
                 "s.yaml:4:46: step 1 (munmap): unknown errno 'EINVALL'; did you mean 'EINVAL'?",
                 id='errno'),
    pytest.param(H + '  - {read: {addr: 0, length: 1}, signal: SIGSEV}\n',
                 "s.yaml:4:42: step 1 (read): unknown signal 'SIGSEV'; did you mean 'SIGSEGV'?",
                 id='signal'),
    pytest.param(H + '  - munmap: {addr: base, length: 1, errno: EINVAL}\n',
                 "s.yaml:4:37: step 1 (munmap): 'errno' belongs to the step, not to its arguments; write it next to 'munmap:'",
                 id='errno_inside'),
    pytest.param(H + '  - sysfs: {path: /sys/kernel/mm/lru_gen/enabled, value: on}\n',
                 "s.yaml:4:58: step 1 (sysfs): value: expected a string or an integer, as written by 'echo', found the boolean true (quote it to make it a string)",
                 id='bool'),
    pytest.param('name: x\nsteps:\n  - mmap: &m {as: a, length: 1}\n  - mmap: {<<: *m, as: b}\n',
                 "s.yaml:4:12: YAML merge keys ('<<') are not supported; write the keys out",
                 id='merge'),
    pytest.param('name: x\nsteps: [{exit: }]\n---\nname: y\n',
                 's.yaml:3:1: invalid YAML: expected a single document in the stream, but found another document; write one scenario per file',
                 id='multidoc'),
    pytest.param(H + '  - mremap: {old_addr: base, old_size: 1, new_size: 1, flags: MREMAP_MAYMOVE|MREMAP_FIXED}\n',
                 "s.yaml:4:5: step 1 (mremap): missing argument 'new_addr'; MREMAP_FIXED needs it",
                 id='fixed'),
    pytest.param(H + '  - print: []\n',
                 's.yaml:4:12: step 1 (print): expected at least one counter, found an empty list',
                 id='print_empty'),
    pytest.param(H + '  - print: [pages_shared, pages_shared]\n',
                 "s.yaml:4:27: step 1 (print): counter 'pages_shared' is listed twice; expected each once",
                 id='print_dup'),
    pytest.param(H + '  - pressure: {anon: 1G, cpu: 2}\n',
                 's.yaml:4:31: step 1 (pressure): cpu: expected a CPU number, 0 to 1 (machine.cpus is 2), found the integer 2',
                 id='cpu'),
    pytest.param(H + '  - exit: {code: 0}\n',
                 "s.yaml:4:12: step 1 (exit): unexpected argument 'code'; 'exit' takes no arguments",
                 id='exit_args'),
    pytest.param(H + '  - dump: {what: [maps, page]}\n',
                 "s.yaml:4:25: step 1 (dump): what: unknown dump item 'page'; did you mean 'pages'?",
                 id='dump'),
    pytest.param(H + '  - mmap: {as: my-base, length: 1}\n',
                 "s.yaml:4:16: step 1 (mmap): as: bad name 'my-base'; expected a name for the address (letters, digits, '_')",
                 id='bind_bad'),
    pytest.param(H + '  - fork: {child: main}\n',
                 "s.yaml:4:19: step 1 (fork): child: process 'main' already exists; expected a new name",
                 id='fork_dup'),
    pytest.param(H + '  - expect: {}\n',
                 's.yaml:4:13: step 1 (expect): expected at least one counter, found an empty mapping',
                 id='expect_empty'),
    pytest.param(H + '  - expect: {memory.current: 1, memory_current: 2}\n',
                 "s.yaml:4:33: step 1 (expect): counter 'memory_current' is given twice; expected each once",
                 id='expect_dup'),
    pytest.param(H + '  - exit:\n  - read: {addr: base, length: 1}\n',
                 "s.yaml:5:5: step 2 (read): process 'main' exited at step 1; say which live process runs this step with 'proc:' (none is left)",
                 id='main_exited'),
    pytest.param(H + '  - expect: {1: 1}\n',
                 's.yaml:4:14: step 1 (expect): expected a string key, found the integer 1 (quote it to make it a string)',
                 id='intkey'),
    pytest.param('name: x\ndescription: [a]\nsteps: [{exit: }]\n',
                 's.yaml:2:14: description: expected a string, found a list',
                 id='description'),
    pytest.param('name: x\nmachine: {memory: 4K}\nsteps: [{exit: }]\n',
                 's.yaml:2:19: machine.memory: expected at least 256K of memory, found 4096 bytes',
                 id='memory_small'),
    pytest.param("name: ''\nsteps: [{exit: }]\n",
                 's.yaml:1:7: name: expected a non-empty string, found an empty one',
                 id='nonempty'),
    pytest.param('name: 2026-04-06\nsteps: [{exit: }]\n',
                 's.yaml:1:7: name: expected a string, found the date 2026-04-06 (quote it to make it a string)',
                 id='date'),
    pytest.param('name: x\nsteps:\n  - ksm_wait: {full_scans: !!int zz}\n',
                 "s.yaml:3:28: 'zz' is not a valid !!int value (invalid literal for int() with base 10: 'zz'); expected a value of that type, or no tag",
                 id='badint'),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_error_message(text, message):
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, "s.yaml")
    assert str(info.value) == message


def test_error_carries_position_fields():
    text = H + "  - madvise: {addr: base, length: 3 pages, advice: MADV_MERGABLE}\n"
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, "scenarios/x.yaml")
    e = info.value
    assert (e.path, e.line, e.column) == ("scenarios/x.yaml", 4, 52)
    assert e.message == "step 1 (madvise): unknown advice 'MADV_MERGABLE'; did you mean 'MADV_MERGEABLE'?"


def test_brief_example_position():
    # The documented example: line 7, column 22, step 3.
    text = (
        "name: x\n"
        "steps:\n"
        "  - mmap: {as: base, length: 3 pages}\n"
        "  - memset: {addr: base, value: 1, length: 3 pages}\n"
        "  - sleep: 1s\n"
        "  - madvise:\n"
        "      advice: MADV_MERGABLE\n"
        "      addr: base\n"
        "      length: 3 pages\n"
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, "scenarios/x.yaml")
    assert str(info.value) == (
        "scenarios/x.yaml:7:15: step 3 (madvise): unknown advice 'MADV_MERGABLE'; "
        "did you mean 'MADV_MERGEABLE'?"
    )


def test_default_path_is_string():
    with pytest.raises(ScenarioError, match=r"^<string>:1:1: "):
        load_scenario_text("")


def test_yaml_error_is_never_a_traceback():
    for text in ["a: [", "a: {b", "\tname: x", "name: x\n  bad: indent\n", "? [a]\n: 1\n", "*alias\n"]:
        with pytest.raises(ScenarioError) as info:
            load_scenario_text(text, "y.yaml")
        assert info.value.line >= 1
        assert info.value.column >= 1


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.path == str(path)
    assert "cannot read the file" in info.value.message


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: x\nsteps:\n  - label: caf\xe9\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert (info.value.line, info.value.column) == (3, 15)
    assert "not UTF-8" in info.value.message


def test_reports_the_first_error_in_file_order():
    text = H + "  - madvise: {addr: nope, length: 1, advice: NOPE}\n"
    with pytest.raises(ScenarioError, match=r":4:21: step 1 \(madvise\): addr: name 'nope'"):
        load_scenario_text(text)


def test_recursive_alias_is_rejected_not_looping():
    with pytest.raises(ScenarioError):
        load_scenario_text("name: x\nsteps: &s [*s]\n")


@pytest.mark.parametrize(
    ("value", "column"),
    [("!!int ''", 27), ("!!int", 32), ("!!float x", 27), ("!!bool maybe", 27), ("!!null x", 27),
     ("!!timestamp 2026-13-45", 27)],
)
def test_bad_tagged_values_are_scenario_errors(value, column):
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(f"name: t\nsteps:\n  - mmap: {{as: a, length: {value}}}\n", "t.yaml")
    assert (info.value.line, info.value.column) == (3, column)


def test_mutated_files_never_crash():
    # Random edits of real scenarios must give a ScenarioError with a position, never a traceback.
    import random
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    bases = [(root / "scenarios" / "hugh.yaml").read_text(),
             (Path(__file__).parent / "data" / "all_steps.yaml").read_text()]
    pieces = list(" :-{}[],\n\t'\"!&*|>#0129xzKM+") + ["MADV_", "proc: kid", "exit:", "0x", "~",
                                                      "yes", "<<: ", "!!int ", "!foo "]
    rng = random.Random(1)
    for _ in range(400):
        text = rng.choice(bases)
        for _ in range(rng.randint(1, 4)):
            p = rng.randrange(len(text))
            if rng.random() < 0.5:
                text = text[:p] + text[p + rng.randint(1, 5):]
            else:
                text = text[:p] + rng.choice(pieces) + text[p:]
        try:
            load_scenario_text(text, "f.yaml")
        except ScenarioError as e:
            assert e.line >= 1 and e.column >= 1
