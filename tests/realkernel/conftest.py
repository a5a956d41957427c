"""Fixtures for the real-kernel tests."""

from __future__ import annotations

import textwrap

import pytest

from ksmrepro.scenario.loader import load_scenario


@pytest.fixture
def scenario_from(tmp_path):
    """Write YAML text to a file and load it as a scenario."""

    def load(text: str, name: str = "s.yaml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return load_scenario(str(path))

    return load
