"""Fixtures of the model-zoo tests."""

from __future__ import annotations

import pytest

import striate


@pytest.fixture
def fast_init(monkeypatch):
    """Skip the random fills of weight init (np.empty pages stay untouched): for
    counting the parameters of the 100M-weight models in milliseconds."""
    def keep(t, *args, **kwargs):
        return t

    monkeypatch.setattr(striate.init, "uniform_", keep)
    monkeypatch.setattr(striate.init, "normal_", keep)
