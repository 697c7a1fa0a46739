"""Fixtures isolating the data tests from the real environment (HOME, STRIATE_DATA, system dirs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from striate.data import registry


class Env:
    """Paths of an isolated environment: home (user cache), system dirs, remote (file:// mirror)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.system = root / "system"
        self.remote = root / "remote"
        for d in (self.home, self.system, self.remote):
            d.mkdir()

    def cache(self, name: str) -> Path:
        return self.home / ".cache" / "striate" / name


@pytest.fixture
def env(tmp_path, monkeypatch):
    """HOME in tmp, no XDG_CACHE_HOME / STRIATE_DATA, system dirs and mirrors in tmp."""
    e = Env(tmp_path)
    monkeypatch.setenv("HOME", str(e.home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("STRIATE_DATA", raising=False)
    for name, spec in list(registry.DATASETS.items()):
        monkeypatch.setitem(registry.DATASETS, name, dataclasses.replace(
            spec, system_dirs=(e.system / name,), mirrors=(e.remote.as_uri() + "/",)))
    return e
