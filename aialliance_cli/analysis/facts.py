"""Facts about a model file computed once and kept on disk, keyed by its content.

Counting FLOPs needs ``onnx`` (about a second to import) and shape inference
(about a second more on MiniLM), yet its answer depends only on the model's
bytes and the dims. So the answer is stored under the user cache dir
(``<cache>/facts/``), keyed by the file's sha256, the dims and
:data:`FACTS_VERSION`; a changed model has another digest and misses the cache.

The digest itself is memoised by the file's stat (path, inode, size, mtime in
ns, ctime in ns), as git's index does, so a warm lookup reads two small files
and hashes nothing. A file lock makes concurrent callers (the parent and its
worker) compute a report once: the second waits for the first and reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from aialliance_cli.analysis.flops import FlopReport

FACTS_VERSION = 1  # bump when FLOP counting changes, so old answers are not reused


def facts_dir() -> Path:
    from aialliance_cli.paths import user_dirs

    return user_dirs().cache / "facts"


def _stat_key(path: Path) -> str:
    st = path.stat()
    raw = f"{path.resolve()}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_digest(path: str | Path) -> str:
    """The sha256 of the file's bytes, memoised by its stat in the facts dir."""
    path = Path(path)
    memo = facts_dir() / "digests" / _stat_key(path)
    try:
        digest = memo.read_text().strip()
        if len(digest) == 64:
            return digest
    except OSError:
        pass
    digest = _sha256(path)
    with contextlib.suppress(OSError):  # a read-only cache only costs the next call a hash
        _write_atomic(memo, digest)
    return digest


def _dims_key(dims: Mapping[str, int]) -> str:
    text = json.dumps(sorted((str(k), int(v)) for k, v in dims.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def flops_cache_path(model_path: str | Path, dims: Mapping[str, int]) -> Path:
    digest = content_digest(model_path)
    return facts_dir() / f"flops-v{FACTS_VERSION}-{digest[:32]}-{_dims_key(dims)}.json"


def flop_report(model_path: str | Path, dims: Mapping[str, int]) -> FlopReport | None:
    """The FLOP report of the model at ``dims``: from the cache, else counted and stored.

    None when the graph cannot be counted (the reason is kept in the cache entry).
    """
    path = flops_cache_path(model_path, dims)
    cached = _read(path)
    if cached is not None:
        return _report(cached)
    with _locked(path.with_suffix(".lock")):
        cached = _read(path)  # another process may have counted it while we waited
        if cached is not None:
            return _report(cached)
        entry = _count(Path(model_path), dims)
        with contextlib.suppress(OSError):
            _write_atomic(path, json.dumps(entry))
    return _report(entry)


def cached_flop_report(model_path: str | Path, dims: Mapping[str, int]) -> FlopReport | None:
    """The cached report only (None when absent): never imports onnx."""
    try:
        entry = _read(flops_cache_path(model_path, dims))
    except OSError:
        return None
    return _report(entry) if entry is not None else None


def model_fact(model_path: str | Path, name: str, compute: Any) -> Any:
    """``compute(model_path)`` (JSON-able), kept per model content under ``name``.

    For small facts read from the graph on every run (the embedding tables' sizes):
    a warm lookup reads one small file instead of scanning the model. A cache that
    cannot be read or written only costs the computation.
    """
    try:
        path = facts_dir() / f"{name}-v{FACTS_VERSION}-{content_digest(model_path)[:32]}.json"
        entry = _read(path)
    except OSError:
        return compute(model_path)
    if entry is not None and "value" in entry:
        return entry["value"]
    value = compute(model_path)
    with contextlib.suppress(OSError, TypeError, ValueError):
        _write_atomic(path, json.dumps({"version": FACTS_VERSION, "value": value}))
    return value


def _count(model_path: Path, dims: Mapping[str, int]) -> dict[str, Any]:
    try:
        from aialliance_cli.analysis.flops import count_flops
        from aialliance_cli.analysis.graph import load_model_proto

        report = count_flops(load_model_proto(model_path), dict(dims))
    except Exception as exc:  # a report, never a reason to fail a run
        return {"version": FACTS_VERSION, "report": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"version": FACTS_VERSION, "report": report.to_dict(), "error": None}


def _report(entry: dict[str, Any]) -> FlopReport | None:
    data = entry.get("report")
    if not data:
        return None
    return FlopReport(
        total=int(data["total"]),
        by_op_type={str(k): int(v) for k, v in data["by_op_type"].items()},
        by_node={str(k): int(v) for k, v in data["by_node"].items()},
        unresolved=tuple(data.get("unresolved") or ()),
        dims={str(k): int(v) for k, v in (data.get("dims") or {}).items()},
    )


def _read(path: Path) -> dict[str, Any] | None:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("version") != FACTS_VERSION:
        return None
    return entry


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(lock_path, "a")  # noqa: SIM115 - held for the with block
    except OSError:
        yield  # no lock where the cache cannot be written: count without it
        return
    try:
        import fcntl

        fcntl.flock(fh, fcntl.LOCK_EX)
    except (ImportError, OSError):
        pass
    try:
        yield
    finally:
        fh.close()  # releases the lock


def _write_atomic(path: Path, text: str) -> None:
    from aialliance_cli.atomicfile import write_text_atomic

    write_text_atomic(path, text)
