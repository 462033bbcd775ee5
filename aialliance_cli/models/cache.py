"""The model cache: exported and downloaded models, keyed by source and options.

Layout: ``<root>/<key>/model.onnx`` (plus external data and tokenizer files)
and ``<root>/<key>/aia-cache.json``. An entry is built in a temporary folder of
the same root and renamed into place, so readers never see half an entry; when
two processes race, the first rename wins and the other discards its copy.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError

METADATA = "aia-cache.json"
MODEL_FILE = "model.onnx"
FORMAT = 1
_TMP_PREFIX = ".tmp-"
_DEL_PREFIX = ".del-"
_STALE_TMP_S = 3600  # a temp folder untouched this long belongs to a crashed export


@dataclass(frozen=True)
class CacheEntry:
    """One cached model: ``path`` is its folder, ``model_path`` the ONNX file in it."""

    key: str
    path: Path
    source: dict[str, Any]
    created: str  # ISO 8601, UTC
    size_bytes: int

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "path": str(self.path),
            "source": self.source,
            "created": self.created,
            "size_bytes": self.size_bytes,
        }


def cache_root() -> Path:
    """The folder of the model cache (``AIA_CACHE_DIR``/models; not created here)."""
    from aialliance_cli.paths import user_dirs

    return user_dirs().models


def cache_key(kind: str, identity: dict[str, Any]) -> str:
    """A stable key: a readable slug of the source plus a hash of its canonical JSON.

    Any change of source or export option (revision, task, opset, tool versions)
    changes the hash; key order in ``identity`` does not.
    """
    canonical = json.dumps(
        {"kind": kind, **identity}, sort_keys=True, separators=(",", ":"), default=str
    )
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    slug = _slug(identity)
    return f"{kind}-{slug}-{digest}" if slug else f"{kind}-{digest}"


def _slug(identity: dict[str, Any]) -> str:
    name, field = "", ""
    for field in ("id", "package", "path", "url", "name"):
        value = identity.get(field)
        if isinstance(value, dict):
            value = value.get("name") or value.get("path") or value.get("id")
        if isinstance(value, str) and value:
            name = value
            break
    if not name:
        return ""
    if "://" in name or ("/" in name and field in ("path", "url")):
        name = name.rstrip("/").rsplit("/", 1)[-1]
    name = re.sub(r"\.onnx$", "", name)
    name = re.sub(r"[^a-z0-9._-]+", "-", name.lower().replace("/", "--")).strip("-.")
    return name[:48]


def lookup(key: str, *, root: Path | None = None) -> CacheEntry | None:
    """Return the complete entry stored under ``key``, or None."""
    return _read_entry((root or cache_root()) / key)


def store(
    key: str,
    source: dict[str, Any],
    fill: Callable[[Path], object],
    *,
    root: Path | None = None,
) -> CacheEntry:
    """Build an entry atomically: ``fill(tmp_dir)`` writes model.onnx and friends.

    If another process stored the same key meanwhile, its entry is kept and
    returned. If ``fill`` raises, nothing is left behind.
    """
    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets `aia cache clear` tell a killed export from a running one.
    tmp = root / f"{_TMP_PREFIX}{os.getpid()}-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fill(tmp)
        if not (tmp / MODEL_FILE).is_file():
            raise RuntimeError(f"the cache entry {key} was built without {MODEL_FILE}")
        meta = {
            "format": FORMAT,
            "key": key,
            "source": source,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "size_bytes": 0,
        }
        meta["size_bytes"] = _tree_size(tmp)
        _write_json(tmp / METADATA, meta)
        final = root / key
        try:
            os.replace(tmp, final)
        except OSError:
            # The destination exists and is not empty: another process won.
            winner = _read_entry(final)
            if winner is None:
                raise
            _remove_tree(tmp)
            return winner
    except BaseException:
        _remove_tree(tmp)
        raise
    entry = _read_entry(final)
    if entry is None:  # removed by a concurrent clear between rename and read
        raise RuntimeError(f"the cache entry {final} vanished while it was being written")
    return entry


def list_cache(*, root: Path | None = None) -> list[CacheEntry]:
    """Every complete entry in the cache, oldest first."""
    root = root or cache_root()
    if not root.is_dir():
        return []
    entries = []
    for child in root.iterdir():
        if child.name.startswith(".") or not child.is_dir():
            continue
        if child.name == GENAI_DIR:
            entries.extend(_genai_entries(child))
            continue
        entry = _read_entry(child)
        if entry is not None:
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.created, e.key))


GENAI_DIR = "genai"  # text-generation exports and random-weight models (aialliance_cli.genai)


def _genai_entries(folder: Path) -> list[CacheEntry]:
    """Decoder exports and random-weight models keep their own layout; list them as entries."""
    out = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        try:
            meta = json.loads((child / "aia-export.json").read_text(encoding="utf-8"))
            source = {"kind": "text-generation export", **meta}
        except (OSError, ValueError):
            source = {"kind": "text-generation model folder"}
        created = _dt.datetime.fromtimestamp(_mtime(child), _dt.timezone.utc)
        out.append(
            CacheEntry(
                key=f"{GENAI_DIR}/{child.name}",
                path=child,
                source=source,
                created=created.isoformat(timespec="seconds"),
                size_bytes=_tree_size(child),
            )
        )
    return out


def clear_cache(
    keys: list[str] | None = None, *, root: Path | None = None, family: bool = False
) -> int:
    """Remove the given entries (all of them, and leftovers of crashed exports, when None).

    Returns the bytes freed. An unknown key raises BadInputError before anything
    is removed; so does a key that names a whole family of entries (``genai``)
    unless ``family`` is true.
    """
    root = root or cache_root()
    if not root.is_dir():
        if keys:
            raise BadInputError(
                f"There is no model cache entry {keys[0]!r}: the cache at {root} is empty."
            )
        return 0
    if keys is None:
        targets = [c for c in root.iterdir() if c.is_dir() and not c.name.startswith(".")]
        now = time.time()
        for child in root.iterdir():
            if child.name.startswith(_DEL_PREFIX) or (
                child.name.startswith(_TMP_PREFIX)
                and (now - _mtime(child) > _STALE_TMP_S or not _owner_alive(child.name))
            ):
                targets.append(child)
    else:

        def valid(k: str) -> bool:
            parts = k.split("/")
            if len(parts) == 2 and parts[0] == GENAI_DIR:
                return bool(parts[1]) and not parts[1].startswith(".") and (root / k).is_dir()
            return len(parts) == 1 and not k.startswith(".") and (root / k).is_dir()

        families = [k for k in keys if k.strip("/") == GENAI_DIR]
        if families and not family:
            count = len(_genai_entries(root / GENAI_DIR)) if (root / GENAI_DIR).is_dir() else 0
            raise BadInputError(
                f"'{GENAI_DIR}' is not one cache entry but the folder of all {count} "
                f"text-generation entries ({GENAI_DIR}/NAME); name the entries to remove "
                "(see aia cache list), or add --family to remove all of them."
            )
        keys = [k.strip("/") if k.strip("/") == GENAI_DIR else k for k in keys]
        unknown = [k for k in keys if not valid(k)]
        if unknown:
            known = ", ".join(e.key for e in list_cache(root=root)) or "none"
            raise BadInputError(
                f"There is no model cache entry {', '.join(map(repr, unknown))} in {root}. "
                f"Entries: {known}."
            )
        targets = [root / k for k in dict.fromkeys(keys)]
    freed = 0
    for target in targets:
        # Rename first so that a reader never finds a half-deleted entry.
        trash = target.parent / f"{_DEL_PREFIX}{target.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.replace(target, trash)
        except FileNotFoundError:
            continue  # another process removed it
        freed += _tree_size(trash)
        _remove_tree(trash)
    return freed


def _read_entry(folder: Path) -> CacheEntry | None:
    try:
        meta = json.loads((folder / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not (folder / MODEL_FILE).is_file():
        return None
    return CacheEntry(
        key=folder.name,
        path=folder,
        source=meta.get("source") or {},
        created=str(meta.get("created", "")),
        size_bytes=int(meta.get("size_bytes") or 0),
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _tree_size(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # removed meanwhile
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _owner_alive(tmp_name: str) -> bool:
    """Whether the process that named a temp entry ``.tmp-<pid>-...`` still runs."""
    pid = tmp_name[len(_TMP_PREFIX) :].split("-", 1)[0]
    if not pid.isdigit():
        return True  # an older name without the pid: only its age tells
    return pid_alive(int(pid))


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (it may be another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
