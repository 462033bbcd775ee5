"""Check that a file is a loadable ONNX model before any session is built.

The graph's skeleton is scanned once (models/protoscan.py, without importing
onnx), without its external data, so that a multi-gigabyte model costs one
memory-mapped pass over its protobuf and a ``stat`` of each external file.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from aialliance_cli.errors import ModelError
from aialliance_cli.models.protoscan import EXTERNAL, ModelInfo, ScanError, scan_model


@dataclass(frozen=True)
class OnnxFileInfo:
    """What aia learnt about an ONNX file without running it.

    ``size_bytes`` counts the model file and its external data files;
    ``external_data`` holds their paths relative to the model's folder.
    """

    path: Path
    size_bytes: int
    opset: int | None
    ir_version: int
    producer: str | None
    external_data: tuple[str, ...] = ()


def check_onnx_file(path: Path) -> OnnxFileInfo:
    """Return what the ONNX file at ``path`` holds, or raise ModelError saying what is wrong."""
    path = Path(path).expanduser()
    _check_readable(path)
    model = _parse(path)
    _check_structure(path, model)
    external, external_bytes = _check_external_data(path, model)
    opset = model.opset
    producer = f"{model.producer_name} {model.producer_version}".strip() or None
    return OnnxFileInfo(
        path=path,
        size_bytes=path.stat().st_size + external_bytes,
        opset=opset,
        ir_version=model.ir_version,
        producer=producer,
        external_data=external,
    )


def _check_readable(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        parent = path.parent
        hint = "" if parent.is_dir() else f" (its folder {parent} does not exist either)"
        raise ModelError(f"The model file {path} does not exist{hint}.") from None
    except PermissionError:
        raise ModelError(
            f"The model file {path} cannot be read: permission denied on the file or a folder "
            "above it."
        ) from None
    except OSError as exc:
        raise ModelError(f"The model file {path} cannot be read: {exc.strerror}.") from None
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.onnx"))
        hint = f" It contains {', '.join(inside)}; name one of them." if inside else ""
        raise ModelError(f"The model path {path} is a directory, not an ONNX file.{hint}")
    if st.st_size == 0:
        raise ModelError(f"The model file {path} is empty, so it is not an ONNX model.")
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except PermissionError:
        raise ModelError(
            f"The model file {path} cannot be read: permission denied (check its mode and owner)."
        ) from None
    except OSError as exc:
        if exc.errno == errno.EISDIR:  # pragma: no cover - caught above
            raise ModelError(f"The model path {path} is a directory, not an ONNX file.") from None
        raise ModelError(f"The model file {path} cannot be read: {exc.strerror}.") from None


def _parse(path: Path) -> ModelInfo:
    # The wire-format scanner, not onnx.load: importing onnx alone costs about a second.
    try:
        return scan_model(path)
    except ScanError as exc:
        gist = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        guess = _looks_like(path)
        raise ModelError(
            f"The file {path} is not a valid ONNX model ({guess}; the protobuf parser said: "
            f"{gist}). {_advice(guess)}"
        ) from None
    except OSError as exc:
        raise ModelError(f"The model file {path} cannot be read: {exc}.") from None


def _check_structure(path: Path, model: ModelInfo) -> None:
    # Protobuf happily parses many non-ONNX byte strings into an empty or odd
    # ModelProto, so require what every real model has.
    problems = []
    if model.ir_version <= 0:
        problems.append("no IR version")
    if model.graph is None:
        problems.append("no graph")
    elif not model.graph.nodes and not model.graph.outputs:
        problems.append("an empty graph")
    if not model.opset_import:
        problems.append("no opset import")
    if problems:
        guess = _looks_like(path)
        raise ModelError(
            f"The file {path} is not a valid ONNX model: it has {', '.join(problems)} "
            f"({guess}). {_advice(guess)}"
        )


def _check_external_data(path: Path, model: ModelInfo) -> tuple[tuple[str, ...], int]:
    base = path.parent
    needed: dict[str, int] = {}  # location -> bytes the tensors need from it
    for tensor in model.all_tensors():
        if tensor.data_location != EXTERNAL:
            continue
        info = tensor.external_data
        location = info.get("location", "")
        end = int(info.get("offset") or 0) + int(info.get("length") or 0)
        needed[location] = max(needed.get(location, 0), end)
    if not needed:
        return (), 0
    _check_locations(path, needed)
    missing, short, total = [], [], 0
    for location, end in sorted(needed.items()):
        target = base / location
        try:
            size = target.stat().st_size
        except OSError:
            missing.append(location)
            continue
        total += size
        if size < end:
            short.append(f"{location} ({size} bytes, tensors need {end})")
    if missing:
        raise ModelError(
            f"The ONNX model {path} keeps its weights in external data files that are missing "
            f"from {base}: {', '.join(missing)}. Copy them next to the model file."
        )
    if short:
        raise ModelError(
            f"The ONNX model {path} has truncated external data files: {', '.join(short)}. "
            "Copy them again from the source."
        )
    return tuple(sorted(needed)), total


def _check_locations(path: Path, locations: dict[str, int]) -> None:
    """Refuse external data that leaves the model's folder, before anything opens it.

    A location must be a relative path without ``..`` whose file, symlinks followed, lies
    in the model's folder (or in the folder the model file itself resolves to, as in a
    Hugging Face cache where both are links into one ``blobs`` folder).
    """
    base = path.parent
    roots = {_resolved(base)}
    roots.add(_resolved(path).parent)
    bad: list[str] = []
    for location in sorted(locations):
        parts = location.replace("\\", "/").split("/")
        if not location or location.startswith(("/", "\\")) or Path(location).is_absolute():
            bad.append(f"'{location}' (an absolute path)")
        elif ".." in parts or (len(location) > 1 and location[1] == ":"):
            bad.append(f"'{location}' (it climbs out with '..')")
        else:
            target = _resolved(base / location)
            if not any(target == r or r in target.parents for r in roots):
                bad.append(f"'{location}' (a link to {target})")
    if bad:
        raise ModelError(
            f"The ONNX model {path} points its external data outside its folder {base}: "
            f"{', '.join(bad)}. aia reads external data only from the model's own folder; "
            "a model that points elsewhere could read any file of this machine."
        )


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return p.absolute()


def _advice(guess: str) -> str:
    if guess.startswith(_ONNX_START):
        return "It is probably truncated: download or copy it again."
    return "Point the profile at an .onnx model file."


_ONNX_START = "it starts like an ONNX model"


def _looks_like(path: Path) -> str:
    """A short guess at what a non-ONNX file is, for the error message."""
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError:
        return "unreadable"
    if head[:1] == b"\x08":  # field 1 (ir_version) comes first in every ONNX file
        return f"{_ONNX_START} but its content is cut or damaged"
    if head.startswith(b"PK\x03\x04"):
        return "it looks like a zip archive (a PyTorch checkpoint?)"
    if head.startswith(b"\x80") or head[:2] == b"\x1f\x8b":
        return "it looks like a pickle or gzip file"
    if head.startswith(b"{") or head.startswith(b"["):
        return "it looks like JSON text"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"{os.path.getsize(path)} bytes of binary data"
    if ":" in text:
        return "it looks like YAML or other text"
    return "it looks like text"
