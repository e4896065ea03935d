"""Shared fixtures. Every test runs with its own FACESTYLE_HOME and offscreen Qt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FACESTYLE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def facestyle_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A fresh FACESTYLE_HOME for each test, so no test sees the user's data or another's."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("FACESTYLE_HOME", str(home))
    monkeypatch.delenv("FACESTYLE_DATABASE", raising=False)  # the local file unless asked
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``, or skip: the core suite must pass where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared development data not found at {SHARED_DATA}")
    return SHARED_DATA
