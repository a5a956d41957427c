"""Helpers for the export tests: compiling and running C (``scenario_from`` is in
tests/conftest.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GCC = shutil.which("gcc")
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-O2"]


@pytest.fixture
def compile_c(tmp_path):
    """gcc -Wall -Wextra -Werror -O2 [-static]; returns the binary's path (skips without gcc)."""
    if GCC is None:
        pytest.skip("gcc is not installed")

    def build(source: str, name: str = "t", static: bool = False) -> Path:
        src = tmp_path / f"{name}.c"
        src.write_text(source)
        out = tmp_path / name
        cmd = [GCC, *WARNINGS, *(["-static"] if static else []), "-o", str(out), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return out

    return build


@pytest.fixture
def code_only():
    """The C source without comments and string/char literals (what the compiler parses)."""
    pattern = re.compile(r'/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', re.S)
    return lambda source: pattern.sub(" ", source)
