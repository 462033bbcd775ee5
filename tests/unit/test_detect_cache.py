"""`aia detect` reuses what cannot change between calls for a few minutes; --refresh asks again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aialliance_cli.hardware import detectcache

_RUN = (
    "import sys\n"
    "from aialliance_cli.cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as e:\n"
    "    assert not e.code, e.code\n"
    "seen = 'ORT-IMPORTED' if 'onnxruntime' in sys.modules else 'ORT-NOT-IMPORTED'\n"
    "print(seen, file=sys.stderr)\n"
)


def _detect(*args: str) -> tuple[dict, bool]:
    out = subprocess.run(
        [sys.executable, "-c", _RUN, "detect", "--json", *args],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    return json.loads(out.stdout), "ORT-IMPORTED" in out.stderr


def _stable(d: dict) -> dict:
    inv = dict(d["inventory"])
    inv.pop("memory")  # read anew each time
    return {"inventory": inv, "plan": d["plan"]}


def test_second_call_reuses_the_answers_without_onnxruntime() -> None:
    first, imported_first = _detect()
    second, imported_second = _detect()
    refreshed, imported_refresh = _detect("--refresh")
    assert imported_first and not imported_second and imported_refresh
    assert _stable(first) == _stable(second) == _stable(refreshed)


def test_cache_is_keyed_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    detectcache.store("stable", {"x": 1})
    assert detectcache.load("stable") == {"x": 1}
    (folder / "new_package").mkdir()  # installing a package changes its folder's mtime
    os.utime(folder, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert detectcache.load("stable") is None


def test_cache_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    detectcache.store("stable", {"x": 1})
    now = time.time()
    monkeypatch.setattr(detectcache.time, "time", lambda: now + detectcache.TTL_S + 1)
    assert detectcache.load("stable") is None


def test_damaged_cache_is_ignored() -> None:
    detectcache.store("stable", {"x": 1})
    detectcache._path().write_text("{not json")
    assert detectcache.load("stable") is None
    detectcache.store("stable", {"x": 2})  # and rewritten whole
    assert detectcache.load("stable") == {"x": 2}
