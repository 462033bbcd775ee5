"""What ``aia fleet bench`` sends to every node: plain data, and the model's bytes when shipped."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any


def bench_spec(
    target: str | None,
    *,
    eps: list[str] | None,
    threads: list[int] | None,
    batches: list[int] | None,
    dims: dict[str, list[int]],
    variant: str | None,
    warmup: int | None,
    iterations: int | None,
    duration: float | None,
    strict: bool,
    same_input: bool,
    allow_network: bool,
    allow_custom_ops: bool,
    timeout: float,
    no_tuned: bool = False,
) -> dict[str, Any]:
    """What every node gets (remote.node_bench): plain data only."""
    from aialliance_cli.runtime.api import Overrides
    from aialliance_cli.runtime.job import overrides_to_dict

    ov = Overrides(
        warmup=warmup,
        iterations=iterations,
        duration_s=duration,
        strict=strict,
        input_sets=1 if same_input else 4,
        allow_custom_ops=allow_custom_ops,
    )
    name = None
    if target is not None and not target.lower().endswith((".onnx", ".ort")):
        with contextlib.suppress(Exception):  # a profile only the nodes have
            from aialliance_cli.profiles import load_profile

            name = load_profile(target).profile.name
    elif target is not None:
        name = Path(target).stem
    if target is not None and Path(target).expanduser().exists():
        target = str(Path(target).expanduser().absolute())  # nodes of this machine share it
    return {
        "target": target,
        "profile_name": name,
        "eps": eps,
        "threads": threads,
        "batches": batches,
        "dims": dims,
        "variant": variant,
        "overrides": overrides_to_dict(ov),
        "timeout_s": timeout,
        "allow_network": allow_network,
        "no_tuned": no_tuned,
        "ship": None,
    }


def ship_model(spec: dict[str, Any], target: str | None, allow_network: bool) -> bytes:
    """Resolve the model here; put its facts in ``spec`` and return its bytes."""
    from aialliance_cli.fleet.remote import sha256_bytes
    from aialliance_cli.runtime.api import prepare_target

    tgt = prepare_target(target, allow_network=allow_network)
    from aialliance_cli.errors import BadInputError
    from aialliance_cli.models.onnxfile import check_onnx_file

    external = check_onnx_file(Path(tgt.model_path)).external_data
    if external:  # refused here, before a cluster starts, not on every node
        shown = ", ".join(external[:3]) + (", ..." if len(external) > 3 else "")
        raise BadInputError(
            f"--ship-model sends one ONNX file, but {tgt.model_path} keeps its weights in "
            f"{len(external)} external data file(s) ({shown}); put the model where every "
            "node reads it at the same path and leave --ship-model out"
        )
    data = Path(tgt.model_path).read_bytes()
    loaded = tgt.loaded
    spec["ship"] = {
        "filename": Path(tgt.model_path).name,
        "sha256": sha256_bytes(data),
        "size_bytes": len(data),
        "driver_path": str(tgt.model_path),
        "profile_yaml": Path(loaded.path).read_text(encoding="utf-8") if loaded else None,
        "profile_filename": Path(loaded.path).name if loaded else None,
        "profile_origin": getattr(loaded, "origin", None) if loaded else None,
    }
    if tgt.tokenizer_dir is not None:  # text profiles: the tokenizer's files travel too
        files = {
            f.name: f.read_bytes()
            for f in sorted(Path(tgt.tokenizer_dir).iterdir())
            if f.is_file()
            and f.resolve() != Path(tgt.model_path).resolve()
            and not f.name.endswith((".onnx", ".onnx.data", ".ort"))
            and f.stat().st_size <= 64 * 2**20
        }
        spec["ship"]["tokenizer_files"] = files
        spec["ship"]["tokenizer_sha256"] = {k: sha256_bytes(v) for k, v in files.items()}
    spec["profile_name"] = tgt.name
    return data
