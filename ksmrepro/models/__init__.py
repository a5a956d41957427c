"""Kernel behaviour models (bases, patches, named models, series)."""

from ksmrepro.models.base import Base, Model, Patch, Switches
from ksmrepro.models.registry import DEFAULT_MODEL, resolve

__all__ = ["Base", "DEFAULT_MODEL", "Model", "Patch", "Switches", "resolve"]
