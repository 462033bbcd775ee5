"""Profiles: YAML files that describe a model run (schema, loading, search path, validation).

Usable on its own: ``load_profile("all-minilm-l6-v2").profile.bench.iterations``.
"""

from __future__ import annotations

from pathlib import Path

from aialliance_cli.errors import ProfileError
from aialliance_cli.profiles.loader import LoadedProfile, load_profile, parse_profile
from aialliance_cli.profiles.schema import SCHEMA_ID, Profile
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
