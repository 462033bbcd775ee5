"""Model sources (file, package, Hugging Face via optimum, URL + sha256) and the model cache.

Importing this package is cheap: onnx, optimum and torch load only when a
model is checked or exported.

Its names load with their submodule on first use: a worker that runs a resolved
model does not import the source resolvers.
"""

from __future__ import annotations

from aialliance_cli.lazy import lazy_exports

# name -> the submodule that defines it, imported on first use (PEP 562)
_EXPORTS = {
    "CacheEntry": "aialliance_cli.models.cache",
    "cache_key": "aialliance_cli.models.cache",
    "cache_root": "aialliance_cli.models.cache",
    "clear_cache": "aialliance_cli.models.cache",
    "list_cache": "aialliance_cli.models.cache",
    "OnnxFileInfo": "aialliance_cli.models.onnxfile",
    "check_onnx_file": "aialliance_cli.models.onnxfile",
    "ModelSpec": "aialliance_cli.models.sources",
    "ResolvedModel": "aialliance_cli.models.sources",
    "package_dir": "aialliance_cli.models.sources",
    "resolve_model": "aialliance_cli.models.sources",
}

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


__getattr__ = lazy_exports(__name__, _EXPORTS)
