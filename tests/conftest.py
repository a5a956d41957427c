"""Fixtures shared by every test directory."""

from __future__ import annotations

import textwrap

import pytest

from ksmrepro import collect
from ksmrepro.models import registry
from ksmrepro.scenario.loader import load_scenario
from tests.models.conftest import MINI_HUGH


@pytest.fixture(autouse=True)
def _builtin_registry():
    """Every test starts and ends with the built-in model registry only (model files loaded by
    one test must not define models for the next)."""
    registry.reset_user_models()
    yield
    registry.reset_user_models()


@pytest.fixture(scope="module")
def mini():
    """tests/models/data/mini-hugh.yaml, loaded: Hugh's testcase on a 128M machine."""
    return collect.load(str(MINI_HUGH))


@pytest.fixture
def scenario_from(tmp_path):
    """Write YAML text to a file and load it as a scenario."""

    def load(text: str, name: str = "s.yaml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return load_scenario(str(path))

    return load
