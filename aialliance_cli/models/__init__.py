"""Model sources (file, package, Hugging Face via optimum, URL + sha256) and the model cache.

Importing this package is cheap: onnx, optimum and torch load only when a
model is checked or exported.
"""

from __future__ import annotations

from aialliance_cli.models.cache import (
    CacheEntry,
    cache_key,
    cache_root,
    clear_cache,
    list_cache,
)
from aialliance_cli.models.onnxfile import OnnxFileInfo, check_onnx_file
from aialliance_cli.models.sources import ModelSpec, ResolvedModel, package_dir, resolve_model

__all__ = [
    "CacheEntry",
    "ModelSpec",
    "OnnxFileInfo",
    "ResolvedModel",
    "cache_key",
    "cache_root",
    "check_onnx_file",
    "clear_cache",
    "list_cache",
    "package_dir",
    "resolve_model",
]
