"""Model tests: the data files (the built-in-registry-only fixture is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
MINI_HUGH = DATA / "mini-hugh.yaml"


@pytest.fixture
def mini_hugh() -> Path:
    """Hugh's testcase on a 128M machine (data/mini-hugh.yaml)."""
    return MINI_HUGH
