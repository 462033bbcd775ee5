"""Python environments that hold other ONNX Runtime builds (docs/envs.md).

Full builds (onnxruntime, onnxruntime-openvino, onnxruntime-gpu, ...) install
the same module and cannot share one environment, so aia keeps a registry of
environments, each with its own build, and runs a benchmark configuration in
the one that offers the asked-for EP.
"""

from __future__ import annotations

from aialliance_cli.envs.registry import (
    WORKER_PACKAGES,
    EnvRecord,
    add_env,
    create_env,
    env_for_ep,
    get_env,
    list_envs,
    probe_python,
    registry_path,
    remove_env,
)

__all__ = [
    "WORKER_PACKAGES",
    "EnvRecord",
    "add_env",
    "create_env",
    "env_for_ep",
    "get_env",
    "list_envs",
    "probe_python",
    "registry_path",
    "remove_env",
]
