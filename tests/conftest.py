"""Shared fixtures: every test gets its own user directories (never the real home)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _aia_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("aia-home")
    monkeypatch.setenv("AIA_HOME", str(home))
    for var in ("AIA_CONFIG_DIR", "AIA_CACHE_DIR", "AIA_DATA_DIR", "AIA_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    # aia bench measures at least 10 s by default (docs/commands.md): tests that do not
    # pass -n would each pay that; the tests of the default unset this.
    monkeypatch.setenv("AIA_BENCH_MIN_TIME", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return home


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache shared by the whole test session, so that slow exports run once."""
    return tmp_path_factory.mktemp("aia-shared-cache")
