"""Export a local Hugging Face model folder to ONNX with optimum (the ``export`` extra)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from aialliance_cli.errors import ModelError, RuntimeFailure

log = logging.getLogger(__name__)

EXPORT_EXTRA_HINT = "pip install 'aialliance-cli[export]'"
# Files a tokenizer or a pre/post-processing step may need, kept next to model.onnx.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "config.json",
    "preprocessor_config.json",
)
STAGES = ("loading model", "exporting to ONNX", "validating")
_CONVERT_LOGGER = "optimum.exporters.onnx.convert"


def export_hf(
    source_dir: Path,
    out_dir: Path,
    *,
    task: str | None,
    opset: int | None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Export the transformers model in ``source_dir`` to ``out_dir/model.onnx`` and return it.

    Runs on the CPU, never touches the network, and copies the tokenizer files
    next to the model. ``progress`` receives the stage names of ``STAGES``.
    """
    report = progress or (lambda _stage: None)
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    seen: set[str] = set()

    def stage(name: str) -> None:
        if name not in seen:
            seen.add(name)
            report(name)

    stage("loading model")  # importing torch and transformers alone takes seconds
    main_export = _import_main_export()
    out_dir.mkdir(parents=True, exist_ok=True)
    with _quiet_libraries(), _stage_reporter(stage):
        try:
            main_export(
                str(source_dir),
                output=out_dir,
                task=task or "auto",
                opset=opset,
                device="cpu",
                library_name="transformers",
                local_files_only=True,
                do_validation=True,
            )
        except Exception as exc:  # optimum/torch raise anything; keep the gist, not the trace
            raise RuntimeFailure(
                f"Exporting the Hugging Face model in {source_dir} to ONNX failed: {_gist(exc)}",
                hint=_hint_for(exc, task),
            ) from exc
    stage("exporting to ONNX")
    stage("validating")
    model = _single_model(out_dir, source_dir, task)
    for name in TOKENIZER_FILES:
        src = source_dir / name
        if src.is_file() and not (out_dir / name).exists():
            shutil.copy2(src, out_dir / name)
    from aialliance_cli.models.onnxfile import check_onnx_file

    try:
        check_onnx_file(model)
    except ModelError as exc:
        raise RuntimeFailure(f"optimum wrote an ONNX model that does not load: {exc}") from exc
    return model


def _import_main_export():
    try:
        from optimum.exporters.onnx import main_export
    except (ImportError, RuntimeError) as exc:  # the lazy module wraps ImportError in RuntimeError
        raise ModelError(
            "Exporting Hugging Face models needs the export extra (optimum, transformers, "
            f"torch): {EXPORT_EXTRA_HINT}. Importing it failed: {_gist(exc)}"
        ) from exc
    return main_export


def _single_model(out_dir: Path, source_dir: Path, task: str | None) -> Path:
    model = out_dir / "model.onnx"
    if model.is_file():
        return model
    produced = sorted(p.name for p in out_dir.glob("*.onnx"))
    if len(produced) == 1:
        (out_dir / produced[0]).rename(model)  # external data keeps its own name
        return model
    what = ", ".join(produced) or "no ONNX file"
    raise ModelError(
        f"Exporting {source_dir} (task {task or 'auto'}) gave {what}; aia runs models made "
        "of one graph. Set `task:` in the profile's huggingface section to a task that "
        "exports one graph (for example feature-extraction or text-classification)."
    )


@contextlib.contextmanager
def _stage_reporter(stage: Callable[[str], None]) -> Iterator[None]:
    """Turn optimum's log lines into stage names (only cosmetic if its wording changes)."""

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                msg = record.getMessage()
            except Exception:  # a bad log call must not break the export
                return
            if msg.startswith("Using framework"):
                stage("exporting to ONNX")
            elif "Validating" in msg:
                stage("exporting to ONNX")
                stage("validating")
            elif record.levelno >= logging.WARNING and "succeeded with the warning" in msg:
                log.warning("%s", msg.split("\n")[0])

    logger = logging.getLogger(_CONVERT_LOGGER)
    handler = Handler(logging.INFO)
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # keep optimum's INFO lines off the user's terminal
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence tracer warnings and library chatter that would break the CLI's spinner."""
    names = ("transformers", "optimum", "torch", "torch.onnx", "huggingface_hub")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _gist(exc: BaseException) -> str:
    """The first meaningful line of an exception and of its cause, without a traceback."""
    parts = []
    seen = 0
    while exc is not None and seen < 3:
        text = str(exc).strip().splitlines()
        line = text[0].strip() if text else ""
        line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
        if len(line) > 400:
            line = line[:397] + "..."
        parts.append(line)
        exc = exc.__cause__
        seen += 1
    return " (caused by ".join(parts) + ")" * (len(parts) - 1)


def _hint_for(exc: BaseException, task: str | None) -> str | None:
    text = str(exc).lower()
    if "task" in text:
        return (
            "Set `task:` in the profile's huggingface section to one optimum supports "
            "for this model (for example feature-extraction)."
        )
    if "out of memory" in text or isinstance(exc, MemoryError):
        return "The export ran out of memory; try a smaller model or a machine with more RAM."
    return None
