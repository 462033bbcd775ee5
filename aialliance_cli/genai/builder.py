"""Fused decoders from ONNX Runtime GenAI's model builder, and the choice of exporter.

The builder (``python -m onnxruntime_genai.models.builder``, package
``onnxruntime-genai``) writes a decoder with fused operators that a plain optimum
export lacks: GroupQueryAttention with rotary embedding, SkipSimplifiedLayerNorm,
a fixed-size KV buffer shared by past and present, and MatMulNBits for int4/int8
weights (block size and accuracy level). It writes ``genai_config.json`` beside
the model, which both aia's loop and GenAI's generator read.

The builder imports a newer transformers than optimum supports, so it usually
runs in an environment of its own (:func:`builder_python`): ``$AIA_GENAI_BUILDER_PYTHON``,
this Python when it can run the builder, or a managed environment that aia makes
once (``user data dir/envs/genai-builder``). That environment is layered on this
one: a ``.pth`` file puts this environment's site-packages after its own, so it
reuses torch, numpy and safetensors and installs only onnxruntime-genai, onnx-ir
and a newer transformers (a few MB). Builds are cached like optimum exports.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from aialliance_cli.children import run_group, spawn_group, stop_group
from aialliance_cli.errors import BadInputError, ModelError, RuntimeFailure

Precision = Literal["fp32", "fp16", "bf16", "int4", "int8"]
Exporter = Literal["auto", "builder", "optimum"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int4", "int8")
EXPORTERS: tuple[str, ...] = ("auto", "builder", "optimum")
BLOCK_SIZES: tuple[int, ...] = (16, 32, 64, 128, 256)
# What the builder's environment needs beyond torch, numpy and safetensors (reused).
BUILDER_PACKAGES: tuple[str, ...] = ("onnxruntime-genai>=0.18", "onnx-ir", "transformers>=5")
ENV_PYTHON = "AIA_GENAI_BUILDER_PYTHON"
BUILD_TIMEOUT_S = 3600.0
_READY = ".aia-ready"
# The builder's combinations (its own list): fp16/bf16 need a GPU EP, CPU takes fp32/int8/int4.
_VALID = {
    "cpu": ("fp32", "int8", "int4"),
    "cuda": ("fp32", "fp16", "bf16", "int8", "int4"),
    "dml": ("fp16", "int4"),
    "webgpu": ("int8", "int4"),
}
_EP_OF = {
    "CPUExecutionProvider": "cpu",
    "CUDAExecutionProvider": "cuda",
    "DmlExecutionProvider": "dml",
    "WebGpuExecutionProvider": "webgpu",
}

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class ExportOutcome:
    """Where the decoder is and how it was made (recorded in results)."""

    folder: Path
    exporter: str  # builder | optimum | given
    precision: str
    block_size: int | None = None
    accuracy_level: int | None = None
    execution_provider: str = "cpu"
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["folder"] = str(self.folder)
        d["warnings"] = list(self.warnings)
        return d


def builder_ep(ep: str | None) -> str:
    """The builder's ``-e`` for an ORT EP name (CPU for anything it does not target)."""
    return _EP_OF.get(ep or "CPUExecutionProvider", "cpu")


def check_build_options(
    precision: str,
    execution_provider: str = "cpu",
    block_size: int = 32,
    accuracy_level: Any = None,
) -> None:
    """BadInputError naming the value when the builder cannot make this combination."""
    if precision not in PRECISIONS:
        raise BadInputError(
            f"precision '{precision}' is not one of {', '.join(PRECISIONS)}",
            hint="fp32 everywhere; int4/int8 on CPUs; fp16/bf16 on GPUs (CUDA, DirectML).",
        )
    allowed = _VALID.get(execution_provider, ())
    if precision not in allowed:
        raise BadInputError(
            f"precision {precision} is not available for the builder's {execution_provider} "
            f"target (it offers {', '.join(allowed) or 'nothing'} there)",
            hint="fp16 and bf16 need a GPU EP (CUDA, DirectML); on a CPU use fp32, int8 or int4.",
        )
    if block_size not in BLOCK_SIZES:
        raise BadInputError(
            f"block size {block_size} is not one of {', '.join(map(str, BLOCK_SIZES))}"
        )
    if accuracy_level is not None and accuracy_level not in (0, 1, 2, 3, 4):
        raise BadInputError(
            f"accuracy level {accuracy_level} is not one of 0-4 "
            "(1 fp32, 2 fp16, 3 bf16, 4 int8 activations; 0 = the EP's default)"
        )


# --- the builder's Python ------------------------------------------------------------------


def builder_env_dir() -> Path:
    from aialliance_cli.paths import user_dirs

    return user_dirs().data / "envs" / "genai-builder"


def _venv_python(folder: Path) -> Path:
    win = folder / "Scripts" / "python.exe"
    return win if win.exists() else folder / "bin" / "python"


def _here_can_build() -> bool:
    """This Python has the builder and a transformers new enough for it (no import)."""
    import importlib.metadata as md
    import importlib.util

    if importlib.util.find_spec("onnxruntime_genai") is None:
        return False
    if importlib.util.find_spec("onnx_ir") is None:
        return False
    try:
        major = int(md.version("transformers").split(".")[0])
    except (md.PackageNotFoundError, ValueError):
        return False
    return major >= 5


def builder_python(*, allow_install: bool = False, progress: Progress = _quiet) -> Path | None:
    """The Python that runs the model builder, or None when there is none (yet).

    Order: ``$AIA_GENAI_BUILDER_PYTHON``; this Python when it can run the builder;
    the managed environment; with ``allow_install``, the managed environment made now
    (needs the package index once).
    """
    given = os.environ.get(ENV_PYTHON)
    if given:
        path = Path(given).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BadInputError(f"{ENV_PYTHON}={given} is not an executable file")
        return path
    if _here_can_build():
        return Path(sys.executable)
    folder = builder_env_dir()
    ready = folder / _READY
    if ready.is_file() and _venv_python(folder).is_file():
        return _venv_python(folder)
    if not allow_install:
        return None
    return create_builder_env(folder, progress=progress)


def create_builder_env(folder: Path, *, progress: Progress = _quiet) -> Path:
    """Make the layered builder environment in ``folder`` (once; a lock serialises makers)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    import hashlib

    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"aia-builder-env-{digest}.lock"
    with open(lock_path, "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # Windows: no lock
            pass
        python = _venv_python(folder)
        if (folder / _READY).is_file() and python.is_file():
            return python
        progress(f"making the model builder's environment {folder} (once)")
        shutil.rmtree(folder, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(folder)],
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                *BUILDER_PACKAGES,
            ],
        ]
        try:
            for i, cmd in enumerate(steps):
                code, out, err = run_group(cmd)  # its whole group ends on a signal
                if code != 0:
                    tail = (err or out).strip()[-800:]
                    raise RuntimeFailure(
                        f"making the model builder's environment failed: {' '.join(cmd[:4])} ... "
                        f"exited {code}: {tail}",
                        hint=f"Point {ENV_PYTHON} at a Python with onnxruntime-genai, onnx-ir "
                        "and transformers>=5, or use --exporter optimum.",
                    )
                if i == 0:  # layer this environment's packages below the new one's
                    site = Path(
                        subprocess.run(
                            [
                                str(python),
                                "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                            ],
                            capture_output=True,
                            text=True,
                            check=True,
                        ).stdout.strip()
                    )
                    base = sysconfig.get_paths()
                    lines = dict.fromkeys([base["purelib"], base["platlib"]])
                    (site / "aia-base.pth").write_text("\n".join(lines) + "\n")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        (folder / _READY).write_text(" ".join(BUILDER_PACKAGES) + "\n")
        return python


# --- building --------------------------------------------------------------------------------


def _builder_version(python: Path) -> str:
    if python == Path(sys.executable):
        import importlib.metadata as md

        return md.version("onnxruntime-genai")
    done = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m; print(m.version('onnxruntime-genai'))",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def build_genai_model(
    source: str | Path,
    out_dir: str | Path | None = None,
    *,
    precision: str = "fp32",
    execution_provider: str = "cpu",
    block_size: int = 32,
    accuracy_level: int | None = None,
    allow_download: bool = False,
    allow_install: bool = False,
    python: str | Path | None = None,
    progress: Progress = _quiet,
) -> ExportOutcome:
    """Build a fused decoder with ONNX Runtime GenAI's model builder (cached).

    ``source`` is a local transformers folder or a hub id (offline unless
    ``allow_download``). ``accuracy_level`` None is the builder's default (4,
    int8 activations, on the CPU) for int4/int8. Raises ModelError when no
    Python can run the builder.
    """
    from aialliance_cli.genai.export import MARKER, _slug, cache_key, cache_root

    check_build_options(precision, execution_provider, block_size, accuracy_level)
    quantized = precision in ("int4", "int8")
    level = (4 if execution_provider == "cpu" else 0) if accuracy_level is None else accuracy_level
    options = {
        "exporter": "builder",
        "precision": precision,
        "ep": execution_provider,
        "block_size": block_size if quantized else None,
        "accuracy_level": level if quantized else None,
    }
    exe = Path(python) if python else builder_python(allow_install=allow_install, progress=progress)
    if exe is None:
        raise ModelError(
            "ONNX Runtime GenAI's model builder is not available: it needs onnxruntime-genai, "
            "onnx-ir and transformers>=5, which clash with optimum's transformers here.",
            hint=f"Allow aia to make its environment once (--allow-network), set {ENV_PYTHON} "
            "to a Python that has them, or use --exporter optimum.",
        )
    version = _builder_version(exe)
    local = Path(str(source)).expanduser()
    if out_dir is None:
        key = cache_key(source, **options, builder=version)
        target = cache_root() / f"{_slug(source)}-{precision}-{key[:16]}"
    else:
        target = Path(out_dir)
    outcome = ExportOutcome(
        target,
        "builder",
        precision,
        options["block_size"],
        options["accuracy_level"],
        execution_provider,
    )
    if (target / MARKER).is_file() and (target / "genai_config.json").is_file():
        return outcome
    if not local.is_dir() and (local.is_absolute() or str(source).startswith(".")):
        raise ModelError(f"Model folder {local} does not exist.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    cache = Path(tempfile.mkdtemp(prefix=".builder-cache-", dir=target.parent))
    cmd = [str(exe), "-m", "onnxruntime_genai.models.builder"]
    cmd += ["-i", str(local)] if local.is_dir() else ["-m", str(source)]
    cmd += ["-o", str(tmp), "-p", precision, "-e", execution_provider, "-c", str(cache)]
    extra = ["hf_token=false"]
    if quantized:
        extra += [f"block_size={block_size}", f"accuracy_level={level}"]
    cmd += ["--extra_options", *extra]
    env = dict(os.environ)
    env.pop("PYTHONHOME", None)
    if not allow_download:
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
    progress(f"building the fused decoder ({precision}) with ONNX Runtime GenAI's model builder")
    try:
        # Its own process group, killed whole on Ctrl-C, a signal or the timeout, and
        # (Linux) with aia's death: the builder never outlives aia.
        proc = spawn_group(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(tmp)
        )
        try:
            out, _ = proc.communicate(timeout=BUILD_TIMEOUT_S)
        except BaseException:
            stop_group(proc)
            raise
        if proc.returncode != 0 or not (tmp / "genai_config.json").is_file():
            lines = [ln for ln in (out or "").splitlines() if ln.strip()]
            tail = " | ".join(lines[-6:])[-1200:]
            if not local.is_dir() and not allow_download:
                raise ModelError(
                    f"{source} is not a local folder and the builder could not find it offline "
                    f"({tail[-300:]}).",
                    hint="Allow the download (--allow-network), or use --random-weights.",
                )
            raise ModelError(
                f"ONNX Runtime GenAI's model builder {version} could not build {source} "
                f"({precision}, {execution_provider}; exit {proc.returncode}): {tail}",
                hint="Use --exporter optimum (fp32) for an architecture the builder lacks.",
            )
        for name in ("config.json", "generation_config.json"):
            if local.is_dir() and (local / name).is_file() and not (tmp / name).exists():
                shutil.copy2(local / name, tmp / name)
        (tmp / MARKER).write_text(
            json.dumps({"source": str(source), **options, "builder": version})
        )
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        with contextlib.suppress(OSError):  # another process won the race; as good
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return outcome


def export_decoder(
    source: str | Path,
    *,
    exporter: str = "auto",
    precision: str = "fp32",
    execution_provider: str = "cpu",
    block_size: int = 32,
    accuracy_level: int | None = None,
    revision: str = "main",
    opset: int | None = None,
    allow_download: bool = False,
    allow_install: bool = False,
    progress: Progress = _quiet,
) -> ExportOutcome:
    """The decoder of a transformers model: the builder's fused graph, else optimum's.

    ``exporter`` auto uses the builder when a Python can run it and falls back to
    optimum (fp32 only) with a warning saying why; builder or optimum insist.
    """
    from aialliance_cli.genai.export import export_causal_lm

    if exporter not in EXPORTERS:
        raise BadInputError(f"exporter '{exporter}' is not one of {', '.join(EXPORTERS)}")
    check_build_options(precision, execution_provider, block_size, accuracy_level)
    if exporter == "optimum" and precision != "fp32":
        raise BadInputError(
            f"precision {precision} needs the model builder; the optimum exporter makes fp32",
            hint="Use --exporter builder (or auto).",
        )
    warnings: list[str] = []
    if exporter != "optimum":
        python = builder_python(allow_install=allow_install, progress=progress)
        if python is not None or exporter == "builder":
            return build_genai_model(
                source,
                precision=precision,
                execution_provider=execution_provider,
                block_size=block_size,
                accuracy_level=accuracy_level,
                allow_download=allow_download,
                allow_install=allow_install,
                python=python,
                progress=progress,
            )
        if precision != "fp32":
            raise ModelError(
                f"precision {precision} needs ONNX Runtime GenAI's model builder, which is not "
                "available here.",
                hint=f"Allow aia to make its environment once (--allow-network) or set "
                f"{ENV_PYTHON}.",
            )
        warnings.append(
            "ONNX Runtime GenAI's model builder is not available (no "
            f"{ENV_PYTHON}, no environment made yet: --allow-network makes one), so the decoder "
            "was exported with optimum, without fused attention; it decodes slower"
        )
    progress("exporting the decoder with its KV cache (optimum)")
    folder = export_causal_lm(source, allow_download=allow_download, revision=revision, opset=opset)
    return ExportOutcome(folder, "optimum", "fp32", warnings=tuple(warnings))
