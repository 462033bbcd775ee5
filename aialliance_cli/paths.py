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
    dirs = UserDirs(
        Path(os.environ.get("AIA_CONFIG_DIR") or defaults.config).expanduser(),
        Path(os.environ.get("AIA_CACHE_DIR") or defaults.cache).expanduser(),
        Path(os.environ.get("AIA_DATA_DIR") or defaults.data).expanduser(),
    )
    for var, path in (
        ("AIA_CONFIG_DIR", dirs.config),
        ("AIA_CACHE_DIR", dirs.cache),
        ("AIA_DATA_DIR", dirs.data),
    ):
        _check_folder(var if os.environ.get(var) else "AIA_HOME" if home else None, path)
    return dirs


def _check_folder(var: str | None, path: Path) -> None:
    """Refuse a user folder that cannot be one: it, or the first existing folder above it,
    is a file (``AIA_HOME=/some/file``). BadInputError (exit 2) names the variable."""
    from aialliance_cli.errors import BadInputError

    for p in (path, *path.parents):
        try:
            if not p.exists():
                continue
        except OSError:
            return
        if p.is_dir():
            return
        source = f"{var}={os.environ.get(var)}" if var else f"aia's folder {path}"
        raise BadInputError(
            f"{source} cannot be used: {p} is a file, not a folder. Point {var or 'AIA_HOME'} "
            "at a folder (it is created when needed) or remove the file."
        )
