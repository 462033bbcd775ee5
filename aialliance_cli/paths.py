"""The user's directories, overridable by environment variables.

``AIA_HOME`` moves all of them under one folder (tests use it);
``AIA_CONFIG_DIR``, ``AIA_CACHE_DIR`` and ``AIA_DATA_DIR`` move one each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class UserDirs:
    config: Path
    cache: Path
    data: Path

    @property
    def profiles(self) -> Path:
        return self.config / "profiles"

    @property
    def models(self) -> Path:
        return self.cache / "models"

    @property
    def results(self) -> Path:
        return self.data / "results"


def user_dirs() -> UserDirs:
    """Return the directories aia may write to (nothing is created here)."""
    home = os.environ.get("AIA_HOME")
    if home:
        base = Path(home).expanduser()
        defaults = UserDirs(base / "config", base / "cache", base / "data")
    else:
        import platformdirs

        defaults = UserDirs(
            Path(platformdirs.user_config_dir("aia")),
            Path(platformdirs.user_cache_dir("aia")),
            Path(platformdirs.user_data_dir("aia")),
        )
    return UserDirs(
        Path(os.environ.get("AIA_CONFIG_DIR") or defaults.config).expanduser(),
        Path(os.environ.get("AIA_CACHE_DIR") or defaults.cache).expanduser(),
        Path(os.environ.get("AIA_DATA_DIR") or defaults.data).expanduser(),
    )
