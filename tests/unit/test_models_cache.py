"""The model cache: keys, atomic entries, listing and clearing."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from aialliance_cli.errors import BadInputError
from aialliance_cli.models import cache
from aialliance_cli.models.cache import cache_key, clear_cache, list_cache, lookup, store


def _fill(payload: bytes = b"onnx-bytes"):
    def fill(tmp: Path) -> None:
        (tmp / "model.onnx").write_bytes(payload)
        (tmp / "tokenizer.json").write_text("{}")

    return fill


def test_key_is_stable_and_ignores_dict_order() -> None:
    a = cache_key("huggingface", {"id": "org/Model-X", "task": "feature-extraction", "opset": 17})
    b = cache_key("huggingface", {"opset": 17, "task": "feature-extraction", "id": "org/Model-X"})
    assert a == b
    assert a.startswith("huggingface-org--model-x-")
    assert re.fullmatch(r"[a-z0-9._-]+", a)


@pytest.mark.parametrize(
    "change",
    [{"task": "text-classification"}, {"opset": 18}, {"revision": "v2"}, {"tools": {"x": "2"}}],
)
def test_key_changes_with_any_option(change: dict) -> None:
    base = {"id": "org/m", "task": "feature-extraction", "opset": 17, "revision": "main"}
    assert cache_key("huggingface", base) != cache_key("huggingface", {**base, **change})


def test_key_differs_by_kind_and_is_readable_for_urls() -> None:
    ident = {"url": "https://example.org/models/resnet50.onnx", "sha256": "0" * 64}
    key = cache_key("url", ident)
    assert key.startswith("url-resnet50-")
    assert cache_key("file", ident) != key


def test_root_follows_aia_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIA_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_root() == tmp_path / "c" / "models"


def test_store_lookup_list_clear(tmp_path: Path) -> None:
    root = tmp_path / "models"
    assert list_cache(root=root) == [] and lookup("k", root=root) is None
    entry = store("k1", {"kind": "url", "url": "u"}, _fill(b"x" * 1000), root=root)
    assert entry.model_path.read_bytes() == b"x" * 1000
    assert (entry.path / "tokenizer.json").is_file()
    meta = json.loads((entry.path / "aia-cache.json").read_text())
    assert meta["source"] == {"kind": "url", "url": "u"} and meta["key"] == "k1"
    assert entry.size_bytes >= 1000
    assert lookup("k1", root=root) == entry
    store("k2", {"kind": "url", "url": "v"}, _fill(), root=root)
    assert [e.key for e in list_cache(root=root)] == ["k1", "k2"]
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []

    freed = clear_cache(["k1"], root=root)
    assert freed >= 1000
    assert [e.key for e in list_cache(root=root)] == ["k2"]
    assert clear_cache(root=root) > 0
    assert list_cache(root=root) == [] and list(root.iterdir()) == []


def test_default_root_is_used(tmp_path: Path) -> None:
    entry = store("k", {}, _fill())
    assert entry.path.parent == cache.cache_root()
    assert [e.key for e in list_cache()] == ["k"]


def test_failed_fill_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "models"

    def broken(tmp: Path) -> None:
        (tmp / "model.onnx").write_bytes(b"half")
        raise RuntimeError("export broke")

    with pytest.raises(RuntimeError, match="export broke"):
        store("k", {}, broken, root=root)
    assert list(root.iterdir()) == []


def test_fill_without_model_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "models"
    with pytest.raises(RuntimeError, match="model.onnx"):
        store("k", {}, lambda tmp: None, root=root)
    assert list(root.iterdir()) == []


def test_racing_writers_one_wins_neither_crashes(tmp_path: Path) -> None:
    root = tmp_path / "models"
    barrier = threading.Barrier(2)
    results: dict[int, object] = {}

    def writer(n: int) -> None:
        def fill(tmp: Path) -> None:
            (tmp / "model.onnx").write_bytes(f"writer {n}".encode())
            barrier.wait()  # both have a complete temp entry before either renames

        try:
            results[n] = store("same", {"writer": n}, fill, root=root)
        except BaseException as exc:  # recorded, asserted below
            results[n] = exc

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, cache.CacheEntry) for r in results.values()), results
    winner = lookup("same", root=root)
    assert winner is not None
    assert results[1] == results[2] == winner
    assert winner.model_path.read_text() == f"writer {winner.source['writer']}"
    assert [p.name for p in root.iterdir()] == ["same"]


def test_list_skips_incomplete_entries(tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "no-metadata").mkdir(parents=True)
    (root / "no-metadata" / "model.onnx").write_bytes(b"x")
    (root / "no-model").mkdir()
    (root / "no-model" / "aia-cache.json").write_text("{}")
    (root / "bad-json").mkdir()
    (root / "bad-json" / "model.onnx").write_bytes(b"x")
    (root / "bad-json" / "aia-cache.json").write_text("{not json")
    assert list_cache(root=root) == []


def test_clear_unknown_key_removes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "models"
    store("keep", {}, _fill(), root=root)
    with pytest.raises(BadInputError, match="nope"):
        clear_cache(["keep", "nope"], root=root)
    with pytest.raises(BadInputError):
        clear_cache([".."], root=root)
    assert [e.key for e in list_cache(root=root)] == ["keep"]


def test_clear_all_removes_stale_temp_but_not_fresh(tmp_path: Path) -> None:
    root = tmp_path / "models"
    stale = root / ".tmp-old-1234"
    fresh = root / ".tmp-new-5678"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"y" * 10)
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))
    assert clear_cache(root=root) == 10
    assert not stale.exists() and fresh.exists()


def test_clear_on_missing_root(tmp_path: Path) -> None:
    assert clear_cache(root=tmp_path / "none") == 0
    with pytest.raises(BadInputError):
        clear_cache(["k"], root=tmp_path / "none")


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: no such process now


def test_clear_all_removes_a_fresh_temp_of_a_killed_export(tmp_path: Path) -> None:
    """An export killed by SIGKILL leaves .tmp-<pid>-...; clear removes it at once."""
    root = tmp_path / "models"
    killed = root / f".tmp-{_dead_pid()}-hf-model-0123abcd"
    running = root / f".tmp-{os.getpid()}-hf-model-4567ef01"
    for folder in (killed, running):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"y" * 10)
    clear_cache(root=root)
    assert not killed.exists() and running.exists()


def test_store_names_its_temp_with_its_pid(tmp_path: Path) -> None:
    root = tmp_path / "models"
    seen: list[str] = []

    def fill(tmp: Path) -> None:
        seen.append(tmp.name)
        (tmp / "model.onnx").write_bytes(b"x")

    store("k1", {"kind": "file"}, fill, root=root)
    assert seen[0].startswith(f".tmp-{os.getpid()}-k1-")


def test_env_create_replaces_the_folder_of_a_killed_create(tmp_path: Path) -> None:
    from aialliance_cli.envs import registry

    half = tmp_path / "envs" / "ov"
    half.mkdir(parents=True)
    (half / ".aia-creating").write_text(str(_dead_pid()))
    (half / "pyvenv.cfg").write_text("half made")
    registry._claim_folder(half)
    assert not half.exists()

    mine = tmp_path / "envs" / "user"
    mine.mkdir()
    with pytest.raises(BadInputError, match="already exists but is not registered"):
        registry._claim_folder(mine)  # not aia's: never deleted
    assert mine.exists()

    busy = tmp_path / "envs" / "busy"
    busy.mkdir()
    (busy / ".aia-creating").write_text(str(os.getppid()))
    with pytest.raises(BadInputError, match="being created by another aia"):
        registry._claim_folder(busy)
    assert busy.exists()


def test_interrupted_fill_leaves_nothing_and_the_next_attempt_works(tmp_path: Path) -> None:
    """Ctrl-C, SIGTERM or SIGHUP (a KeyboardInterrupt in aia) during an export."""
    from aialliance_cli.interrupts import Terminated

    root = tmp_path / "models"

    def interrupted(tmp: Path) -> None:
        (tmp / "model.onnx").write_bytes(b"half")
        raise Terminated(15)

    with pytest.raises(KeyboardInterrupt):
        store("k", {}, interrupted, root=root)
    assert list(root.iterdir()) == []
    entry = store("k", {}, lambda tmp: (tmp / "model.onnx").write_bytes(b"whole"), root=root)
    assert entry.model_path.read_bytes() == b"whole"
