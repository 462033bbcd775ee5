"""Load a profile: find it, read it (bounded), and return it validated.

A profile whose exact text was validated before comes from the validated-profile
cache as plain views (profiles/view.py), without pydantic or YAML: that keeps
pydantic's schema build (about 0.2 s a process) off the path of `aia bench` and
of its worker. Validation itself and its messages live in profiles/validate.py.
"""

from __future__ import annotations

import hashlib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aialliance_cli.errors import ProfileError

MAX_PROFILE_BYTES = 2**20  # a profile is a page of YAML; this bounds the time to read one

Origin = typing.Literal["local", "user", "bundled", "file"]


@dataclass(frozen=True)
class LoadedProfile:
    """A validated profile with where it came from and what its file held.

    ``profile`` reads like the pydantic :class:`~aialliance_cli.profiles.schema.Profile`
    (its fields, properties and ``model_dump``), as a frozen view (profiles/view.py).
    """

    profile: Any
    path: Path
    directory: Path
    sha256: str
    text: str
    origin: str

    def resolve(self, relative: str | Path) -> Path:
        """A path written in the profile, taken relative to the profile's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.directory / p


def load_profile(path_or_name: str | Path, *, origin: str | None = None) -> LoadedProfile:
    """Find (by name or path) and load one profile; raise ProfileError on any problem."""
    from aialliance_cli.profiles.search import locate_profile

    path, found_origin = locate_profile(path_or_name)
    text, digest = _read(path)
    from aialliance_cli.profiles.view import validated_view

    profile = validated_view(text, digest, path)
    return LoadedProfile(
        profile=profile,
        path=path,
        directory=path.parent,
        sha256=digest,
        text=text,
        origin=origin or found_origin,
    )


def parse_profile(text: str, path: str | Path = "<profile>") -> Any:
    """Validate profile text into the pydantic :class:`~aialliance_cli.profiles.schema.Profile`;
    ``path`` only names the file in messages (profiles/validate.py)."""
    from aialliance_cli.profiles.validate import parse_profile as parse

    return parse(text, path)


def display_path(path: str | Path) -> str:
    """A path as a user would type it: relative to the working directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


# --- reading ------------------------------------------------------------------------------------


def _read(path: Path) -> tuple[str, str]:
    from aialliance_cli.smallfile import read_small_bytes

    shown = display_path(path)
    raw = read_small_bytes(
        path,
        "Profile",
        hint="Give a profile file (.yaml).",
        limit=MAX_PROFILE_BYTES,
        error=ProfileError,
        shown=shown,
    )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"Profile {shown} is not UTF-8 text (bad byte at offset {exc.start})."
        ) from None
    return text, hashlib.sha256(raw).hexdigest()
