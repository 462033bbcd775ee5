"""FLOP counts are kept per model content and dims, and a changed model misses the cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aialliance_cli.analysis import facts
from aialliance_cli.analysis.flops import count_flops
from tests.helpers import matmul_model


def test_report_is_cached_and_equal_to_a_fresh_count(tmp_path: Path) -> None:
    import onnx

    path = matmul_model(tmp_path / "mm.onnx", k=16, n=8)
    first = facts.flop_report(path, {"batch": 4})
    assert first is not None and first.total == count_flops(onnx.load(path), {"batch": 4}).total
    cache_file = facts.flops_cache_path(path, {"batch": 4})
    assert cache_file.is_file()
    assert facts.cached_flop_report(path, {"batch": 4}) == first
    # Other dims: another entry.
    assert facts.cached_flop_report(path, {"batch": 8}) is None


def test_changed_model_invalidates(tmp_path: Path) -> None:
    path = matmul_model(tmp_path / "mm.onnx", k=16, n=8)
    before = facts.flop_report(path, {"batch": 2})
    digest = facts.content_digest(path)
    matmul_model(path, k=32, n=8)  # same path, other weights and work
    os.utime(path, ns=(1, 1))  # even with an old mtime, size/ctime/inode move the key
    assert facts.content_digest(path) != digest
    assert facts.cached_flop_report(path, {"batch": 2}) is None
    after = facts.flop_report(path, {"batch": 2})
    assert before is not None and after is not None and after.total > before.total


def test_digest_is_memoised_by_stat(tmp_path: Path) -> None:
    path = matmul_model(tmp_path / "mm.onnx")
    digest = facts.content_digest(path)
    memo = list((facts.facts_dir() / "digests").iterdir())
    assert [m.read_text() for m in memo] == [digest]


def test_uncountable_model_is_cached_as_none(tmp_path: Path) -> None:
    path = matmul_model(tmp_path / "mm.onnx")
    assert facts.flop_report(path, {"no_such_dim": 3}) is None  # count_flops refuses the dim
    assert facts.flops_cache_path(path, {"no_such_dim": 3}).is_file()


def test_warm_lookup_does_not_import_onnx(tmp_path: Path) -> None:
    path = matmul_model(tmp_path / "mm.onnx")
    facts.flop_report(path, {"batch": 1})
    code = (
        "import sys\n"
        "from aialliance_cli.analysis.facts import flop_report\n"
        f"r = flop_report({str(path)!r}, {{'batch': 1}})\n"
        "assert r is not None and r.total > 0\n"
        "print('onnx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_model_fact_is_computed_once_per_content(tmp_path) -> None:
    from aialliance_cli.analysis.facts import model_fact

    model = tmp_path / "m.onnx"
    model.write_bytes(b"first")
    calls: list[str] = []

    def compute(path):
        calls.append(Path(path).read_bytes().decode())
        return {"input_ids": len(calls)}

    assert model_fact(model, "vocab", compute) == {"input_ids": 1}
    assert model_fact(model, "vocab", compute) == {"input_ids": 1}  # from the cache
    model.write_bytes(b"second")  # another model: computed again
    assert model_fact(model, "vocab", compute) == {"input_ids": 2}
    assert calls == ["first", "second"]
