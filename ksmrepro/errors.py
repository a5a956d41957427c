"""Error types.  Only the CLI catches them and prints them; nothing here does IO."""

from __future__ import annotations


class KsmreproError(Exception):
    """Base of every error ksmrepro reports to a user (exit status 2 unless said otherwise)."""


class ScenarioError(KsmreproError):
    """A scenario file is invalid.  Carries ``path:line:column`` of the offending node."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{path}:{line}:{column}: {message}")


class ModelError(KsmreproError):
    """An unknown model, patch or series name, or an invalid model expression/file."""


class KernelBug(KsmreproError):
    """A simulated ``VM_BUG_ON`` fired: a bug in ksmrepro's kernel, not in the scenario."""
