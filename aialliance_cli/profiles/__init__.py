"""Profiles: YAML files that describe a model run (schema, loading, search path, validation).

Usable on its own: ``load_profile("all-minilm-l6-v2").profile.bench.iterations``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aialliance_cli.errors import ProfileError
from aialliance_cli.profiles.loader import LoadedProfile, load_profile, parse_profile
from aialliance_cli.profiles.search import (
    DEFAULT_PROFILE,
    ProfileEntry,
    bundled_profiles_dir,
    find_profile,
    list_profiles,
    search_dirs,
)

__all__ = [
    "DEFAULT_PROFILE",
    "SCHEMA_ID",
    "LoadedProfile",
    "Profile",
    "ProfileEntry",
    "ProfileError",
    "bundled_profiles_dir",
    "find_profile",
    "list_profiles",
    "load_profile",
    "parse_profile",
    "search_dirs",
    "validate_files",
]


def __getattr__(name: str) -> Any:
    """``Profile`` and ``SCHEMA_ID``: the pydantic schema, imported on first use (it costs
    about 0.2 s; a cached profile is read without it, see profiles/view.py)."""
    if name in ("Profile", "SCHEMA_ID"):
        from aialliance_cli.profiles import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def validate_files(paths: list[str | Path]) -> list[tuple[Path, ProfileError | None]]:
    """Load each file (or name); pair it with its ProfileError, or None when it is valid."""
    results: list[tuple[Path, ProfileError | None]] = []
    for item in paths:
        try:
            loaded = load_profile(item)
        except ProfileError as exc:
            results.append((Path(item), exc))
        else:
            results.append((loaded.path, None))
    return results
