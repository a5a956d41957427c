"""Model tests: every test starts and ends with the built-in registry only."""

from __future__ import annotations

from pathlib import Path

import pytest

from ksmrepro.models import registry

DATA = Path(__file__).parent / "data"
MINI_HUGH = DATA / "mini-hugh.yaml"


@pytest.fixture(autouse=True)
def _builtin_registry():
    registry.reset_user_models()
    yield
    registry.reset_user_models()


@pytest.fixture
def mini_hugh() -> Path:
    """Hugh's testcase on a 128M machine (data/mini-hugh.yaml)."""
    return MINI_HUGH
