"""Model files (kind: models): parsing, errors with positions, installation, discovery, and
their use from ``ksmrepro run`` and ``ksmrepro models``."""

from __future__ import annotations

import shutil
import textwrap

import pytest
from click.testing import CliRunner

from ksmrepro import collect
from ksmrepro.cli import cli
from ksmrepro.errors import ModelError
from ksmrepro.models import registry, userfile

MY_TREE = """\
kind: models
models:
  my-tree:
    base: mm-2026-04
    patches: [ksm-pte-mkold]
    knobs: {pages_to_scan: 200, advisor_mode: none}
    summary: mm.git with Hugh's testing patch
  my-tree-slow:
    base: my-tree
    knobs: {pages_to_scan: 50}
patches:
  my-revert:
    title: 'Revert "ksm: Optimize rmap_walk_ksm by passing a suitable address range"'
    function: rmap_walk_ksm
    sets: {ksm_rmap_range: full}
    requires: [ksm-rmap-walk-address-range]
series:
  v3-and-revert:
    base: v7.0-rc6
    patches: [ksm-rmap-walk-address-range, my-revert]
"""

KNOBS_SCENARIO = """\
name: knobs
steps:
  - print: [pages_to_scan, sleep_millisecs]
"""


def load(text: str, name: str = "m.yaml"):
    return userfile.load_model_text(textwrap.dedent(text), name)


def test_a_model_file_defines_models_patches_series():
    mf = load(MY_TREE)
    registry.install_model_file(mf)
    m = registry.resolve("my-tree")
    assert [p.name for p in m.patches] == ["ksm-rmap-walk-address-range", "ksm-pte-mkold"]
    assert m.knobs == (("pages_to_scan", 200), ("advisor_mode", "none"))
    # a model on a model: knobs merge, the later one wins
    slow = registry.resolve("my-tree-slow+ksm-rmap-item-linear-page-index")
    assert dict(slow.knobs) == {"pages_to_scan": 50, "advisor_mode": "none"}
    assert registry.resolve("mm-2026-04+my-revert").switches.ksm_rmap_range == "full"
    assert registry.SERIES["v3-and-revert"].source == "m.yaml"
    assert registry.source_of("patch", "my-revert") == "m.yaml"
    assert registry.source_of("patch", "ksm-pte-mkold") is None


def test_reset_removes_only_user_definitions():
    registry.install_model_file(load(MY_TREE))
    registry.reset_user_models()
    assert "my-tree" not in registry.NAMED
    assert "my-revert" not in registry.PATCHES
    assert "mm-2026-04" in registry.NAMED
    assert "ksm-rmap-walk" in registry.SERIES


def test_installing_the_same_file_twice_is_a_no_op():
    registry.install_model_file(load(MY_TREE))
    registry.install_model_file(load(MY_TREE))
    assert registry.user_state() == (load(MY_TREE),)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("models: {}\n", "m.yaml:1:1: not a model file: expected `kind: models`",
                 id="no-kind"),
    pytest.param("kind: scenario\nmodels: {}\n", "m.yaml:1:7: kind: expected 'models'",
                 id="wrong-kind"),
    pytest.param("kind: models\nmodel: {}\n", "m.yaml:2:1: unknown key 'model'; did you mean "
                 "'models'?", id="top-key"),
    pytest.param("kind: models\nmodels:\n  t: {bas: v6.1}\n",
                 "m.yaml:3:7: models.t: unknown key 'bas'; did you mean 'base'?", id="model-key"),
    pytest.param("kind: models\nmodels:\n  t: {patches: []}\n",
                 "m.yaml:3:6: models.t: missing base:", id="no-base"),
    pytest.param("kind: models\nmodels:\n  t: {base: v6.1, knobs: {pages_to_scn: 1}}\n",
                 "m.yaml:3:27: models.t: knobs: unknown knob 'pages_to_scn'; did you mean "
                 "'pages_to_scan'?", id="knob-name"),
    pytest.param("kind: models\nmodels:\n  t: {base: v6.1, knobs: {run: 5}}\n",
                 "m.yaml:3:32: models.t: knobs.run: expected one of 0, 1, 2, found int 5",
                 id="knob-value"),
    pytest.param("kind: models\nmodels:\n  a+b: {base: v6.1}\n",
                 "m.yaml:3:3: models: expected a model name", id="plus-in-name"),
    pytest.param("kind: models\npatches:\n  p: {title: t, sets: {ksm_rmap_range: adress}}\n",
                 "m.yaml:3:40: patches.p: sets.ksm_rmap_range: expected one of address, full, "
                 "linear_page_index, found str 'adress'", id="switch-value"),
    pytest.param("kind: models\npatches:\n  p: {title: t, sets: {ksm_rmap: full}}\n",
                 "m.yaml:3:24: patches.p: sets: unknown switch 'ksm_rmap'", id="switch-name"),
    pytest.param("kind: models\npatches:\n  p: {sets: {}}\n",
                 "m.yaml:3:6: patches.p: missing title:", id="no-title"),
    pytest.param("kind: models\nseries:\n  s: {base: v6.1, patches: []}\n",
                 "m.yaml:3:28: series.s: patches: expected at least one patch", id="empty-series"),
    pytest.param("kind: models\nmodels: [a]\n", "m.yaml:2:9: models: expected a mapping",
                 id="not-a-mapping"),
    pytest.param("kind: models\nmodels: {a: {base: v6.1}\n", "m.yaml:3:1: not valid YAML",
                 id="yaml"),
])
def test_parse_errors_have_positions(text, message):
    with pytest.raises(ModelError) as e:
        load(text)
    assert str(e.value).startswith(message), str(e.value)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("kind: models\nmodels:\n  t: {base: v6.2}\n",
                 "m.yaml:3:3: t: unknown model 'v6.2'; did you mean 'v6.1'?", id="base"),
    pytest.param("kind: models\nmodels:\n  t: {base: v6.1, patches: [ksm-pte-mkolt]}\n",
                 "m.yaml:3:3: t: unknown patch 'ksm-pte-mkolt'; did you mean 'ksm-pte-mkold'?",
                 id="patch"),
    pytest.param("kind: models\nmodels:\n  t: {base: v6.1, patches: [ksm-rmap-walk-page-index]}"
                 "\n", "m.yaml:3:3: t: t: patch 'ksm-rmap-walk-page-index' needs "
                 "ksm-rmap-item-linear-page-index first", id="requires"),
    pytest.param("kind: models\nmodels:\n  mm-2026-04: {base: v6.1}\n",
                 "m.yaml:3:3: model 'mm-2026-04' is built in; choose another name", id="builtin"),
    pytest.param("kind: models\npatches:\n  p: {title: t, requires: [nope]}\n",
                 "m.yaml:3:3: requires: unknown patch 'nope'", id="requires-unknown"),
    pytest.param("kind: models\nseries:\n  s: {base: v6.1, patches: [ksm-rmap-walk-page-index]}"
                 "\n", "m.yaml:3:3: series s: v6.1+ksm-rmap-walk-page-index: patch", id="series"),
])
def test_install_errors_name_the_definition(text, message):
    with pytest.raises(ModelError) as e:
        registry.install_model_file(load(text))
    assert str(e.value).startswith(message), str(e.value)
    assert registry.user_state() == ()  # nothing half-installed


def test_two_files_defining_one_name(tmp_path):
    (tmp_path / "a.yaml").write_text("kind: models\nmodels:\n  t: {base: v6.1}\n")
    (tmp_path / "b.yaml").write_text("kind: models\nmodels:\n  t: {base: v7.0-rc6}\n")
    with pytest.raises(ModelError, match=r"b\.yaml:3:3: model 't' is already defined in .*a\.yaml"):
        userfile.use_model_files([str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])


def test_missing_model_file():
    with pytest.raises(ModelError, match="nope.yaml: no such model file"):
        userfile.use_model_files(["nope.yaml"])


@pytest.fixture
def tree(tmp_path, monkeypatch, mini_hugh):
    """scenarios/{models/my-tree.yaml, sub/knobs.yaml, hugh.yaml}, plus a non-model YAML."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scenarios" / "models").mkdir(parents=True)
    (tmp_path / "scenarios" / "sub").mkdir()
    (tmp_path / "scenarios" / "models" / "my-tree.yaml").write_text(MY_TREE)
    (tmp_path / "scenarios" / "models" / "notes.yaml").write_text("title: not a model file\n")
    (tmp_path / "scenarios" / "sub" / "knobs.yaml").write_text(
        KNOBS_SCENARIO + "models: [my-tree, v7.0-rc6]\n")
    shutil.copy(mini_hugh, tmp_path / "scenarios" / "mini-hugh.yaml")
    return tmp_path


def test_model_files_next_to_scenarios(tree):
    (tree / "models").mkdir()  # above scenarios/: not a scenario's
    (tree / "models" / "outer.yaml").write_text("kind: models\nmodels: {o: {base: v6.1}}\n")
    (tree / "scenarios" / "sub" / "models").mkdir()
    (tree / "scenarios" / "sub" / "models" / "sub.yml").write_text(
        "kind: models\nmodels: {s: {base: v6.1}}\n")
    assert userfile.model_files_near("scenarios/sub/knobs.yaml") == [
        "scenarios/sub/models/sub.yml", "scenarios/models/my-tree.yaml"]
    assert userfile.model_files_near("scenarios/mini-hugh.yaml") == [
        "scenarios/models/my-tree.yaml"]
    jobs = collect.plan([collect.load("scenarios/sub/knobs.yaml")], ())
    assert [j.model for j in jobs] == ["my-tree", "v7.0-rc6"]


def test_run_uses_model_knobs_and_discovered_files(tree):
    res = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["run", "scenarios/sub/knobs.yaml", "--json", "-"])
    assert res.exit_code == 0, res.output
    import json

    runs = json.loads(res.stdout)["runs"]
    assert [(r["model"], r["observations"][0]["values"]["pages_to_scan"]) for r in runs] == [
        ("my-tree", 200), ("v7.0-rc6", 100)]


def test_run_with_models_file_elsewhere(tree, tmp_path):
    other = tmp_path / "elsewhere.yaml"
    other.write_text("kind: models\nmodels:\n  far: {base: v6.1, knobs: {sleep_millisecs: 7}}\n")
    (tmp_path / "k.yaml").write_text(KNOBS_SCENARIO)
    runner = CliRunner(env={"COLUMNS": "200"})
    res = runner.invoke(cli, ["run", "k.yaml", "-m", "far"])
    assert res.exit_code == 2
    assert "unknown model 'far'" in res.stderr
    res = runner.invoke(cli, ["run", "k.yaml", "-m", "far", "--models-file", str(other)])
    assert res.exit_code == 0, res.output
    assert "sleep_millisecs" in res.stdout
    assert " 7 " in res.stdout


def test_run_unknown_model_exits_2_with_known_names(tree):
    res = CliRunner().invoke(cli, ["run", "scenarios/mini-hugh.yaml", "-m", "my-tre"])
    assert res.exit_code == 2
    assert "unknown model 'my-tre'; did you mean 'my-tree'?" in res.stderr
    assert "v6.1, v7.0-rc6" in res.stderr
    assert "mm-2026-04" in res.stderr


def test_models_command_lists_everything(tree):
    res = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["models"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    for heading in ("bases", "patches", "named models", "series"):
        assert heading in out
    for text in ("ksm: Optimize rmap_walk_ksm by passing a suitable address range",
                 "xu xin, [PATCH v3 2/2]", "rmap_walk_ksm", "mremap",
                 "ksm-rmap-walk", "my-tree", "(from scenarios/models/my-tree.yaml)",
                 "v3-and-revert"):
        assert text in out, text


def test_models_command_shows_one_model_and_rejects_unknown(tree):
    runner = CliRunner(env={"COLUMNS": "200"})
    res = runner.invoke(cli, ["models", "my-tree"])
    assert res.exit_code == 0, res.output
    assert "my-tree = mm-2026-04+ksm-pte-mkold" in res.stdout
    assert "ksm_rmap_range: full -> address" in res.stdout
    assert "pages_to_scan=200" in res.stdout
    res = runner.invoke(cli, ["models", "ksm-rmap-walk", "ksm-pte-mkold"])
    assert res.exit_code == 0, res.output
    assert "series ksm-rmap-walk on v7.0-rc6" in res.stdout
    res = runner.invoke(cli, ["models", "nope"])
    assert res.exit_code == 2
    assert "'nope' is not a model, patch or series" in res.stderr
    assert "ksm-pte-mkold" in res.stderr
    assert "ksm-rmap-walk" in res.stderr


def test_the_example_model_file_is_valid():
    from pathlib import Path

    example = Path(__file__).parents[2] / "scenarios" / "models"
    files = sorted(f for f in example.iterdir() if f.suffix in (".yaml", ".yml"))
    assert files
    for f in files:
        registry.install_model_file(userfile.load_model_file(f, install=False))
