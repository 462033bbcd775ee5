"""Where profiles are found: ./profiles, the user's profiles folder, then the bundled ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aialliance_cli.errors import ProfileError, did_you_mean

DEFAULT_PROFILE = "all-minilm-l6-v2"
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ProfileEntry:
    """One profile file on the search path."""

    name: str  # the file stem: what `aia run NAME` takes
    path: Path
    origin: str  # "local" | "user" | "bundled"
    description: str | None = None
    task: str | None = None
    shadowed_by: Path | None = None  # the file found first under the same name
    error: str | None = None  # why the file does not load, if it does not


def bundled_profiles_dir() -> Path | None:
    """The folder of profiles shipped with aia (the repo's profiles/ in a source checkout)."""
    import aialliance_cli

    checkout = Path(aialliance_cli.__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "profiles").is_dir():
        return checkout / "profiles"
    try:  # an installed wheel maps profiles/ to the package aialliance_cli.bundled_profiles
        from importlib.resources import files

        resource = files("aialliance_cli.bundled_profiles")
    except (ImportError, TypeError, ValueError):
        return None
    for candidate in (resource, *getattr(resource, "_paths", ())):
        try:
            path = Path(str(candidate))
        except TypeError:
            continue
        if path.is_dir():
            return path
    return None


def search_dirs() -> list[tuple[str, Path]]:
    """The folders searched, in order, as (origin, path); a folder appears once."""
    from aialliance_cli.paths import user_dirs

    dirs: list[tuple[str, Path]] = [
        ("local", Path.cwd() / "profiles"),
        ("user", user_dirs().profiles),
    ]
    bundled = bundled_profiles_dir()
    if bundled is not None:
        dirs.append(("bundled", bundled))
    out: list[tuple[str, Path]] = []
    seen: dict[Path, int] = {}
    for origin, path in dirs:
        key = path.resolve()
        if key in seen:
            # run from the repo root, ./profiles is the bundled folder: call it bundled
            if origin == "bundled":
                out[seen[key]] = (origin, path)
            continue
        seen[key] = len(out)
        out.append((origin, path))
    return out


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.endswith(SUFFIXES) or text.startswith("~")


def locate_profile(path_or_name: str | Path) -> tuple[Path, str]:
    """Return (path, origin) of a profile given by name or path; origin "file" for a path."""
    text = str(path_or_name)
    if not text.strip():
        raise ProfileError("No profile given: pass a profile name or a path to a .yaml file.")
    if isinstance(path_or_name, Path) or _looks_like_path(text):
        return Path(text).expanduser(), "file"
    for origin, folder in search_dirs():
        for suffix in SUFFIXES:
            candidate = folder / f"{text}{suffix}"
            if candidate.is_file():
                return candidate, origin
    if Path(text).is_file():  # a file in the working directory named without a suffix
        return Path(text), "file"
    names = sorted({entry.name for entry in _scan()})
    hint = did_you_mean(text, names)
    where = ", ".join(str(folder) for _, folder in search_dirs())
    available = ", ".join(names) if names else "none"
    raise ProfileError(
        f"No profile named '{text}'{hint or '.'} Available: {available} (searched {where})."
    )


def find_profile(name: str | Path) -> Path:
    """The path of a profile given by name (``all-minilm-l6-v2``) or path; else ProfileError."""
    return locate_profile(name)[0]


def _scan() -> list[ProfileEntry]:
    entries: list[ProfileEntry] = []
    for origin, folder in search_dirs():
        if not folder.is_dir():
            continue
        files = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file())
        # within one folder, x.yaml wins over x.yml as in locate_profile
        files.sort(key=lambda p: (p.stem, SUFFIXES.index(p.suffix)))
        entries.extend(ProfileEntry(name=p.stem, path=p, origin=origin) for p in files)
    return entries


def list_profiles() -> list[ProfileEntry]:
    """Every profile on the search path, sorted by name; later ones of a name are shadowed."""
    from aialliance_cli.profiles.loader import load_profile

    winners: dict[str, Path] = {}
    out: list[ProfileEntry] = []
    for entry in _scan():
        shadowed_by = winners.get(entry.name)
        if shadowed_by is None:
            winners[entry.name] = entry.path
        try:
            profile = load_profile(entry.path).profile
            description, task, error = profile.description, profile.task, None
        except ProfileError as exc:
            description, task, error = None, None, str(exc)
        out.append(
            ProfileEntry(
                name=entry.name,
                path=entry.path,
                origin=entry.origin,
                description=description,
                task=task,
                shadowed_by=shadowed_by,
                error=error,
            )
        )
    order = {"local": 0, "user": 1, "bundled": 2}
    out.sort(key=lambda e: (e.name, e.shadowed_by is not None, order.get(e.origin, 3)))
    return out
