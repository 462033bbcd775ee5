"""A quick `-n N` check runs at most N warm-ups unless --warmup says otherwise."""

from __future__ import annotations

from pathlib import Path

from aialliance_cli.runtime.api import Overrides, bench_settings, prepare_target
from tests.helpers import matmul_model


def test_warmup_follows_a_small_iteration_count(tmp_path: Path) -> None:
    target = prepare_target(str(matmul_model(tmp_path / "mm.onnx")))
    assert bench_settings(target, Overrides(iterations=1)).warmup == 1
    assert bench_settings(target, Overrides(iterations=3)).warmup == 3
    assert bench_settings(target, Overrides(iterations=500)).warmup == 10
    assert bench_settings(target, Overrides(iterations=1, warmup=7)).warmup == 7
    assert bench_settings(target, Overrides()).warmup == 10
    assert bench_settings(target, Overrides(duration_s=2.0)).warmup == 10
