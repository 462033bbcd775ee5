"""Read the structure of an ONNX file without importing ``onnx``.

``import onnx`` costs about a second (it pulls in ml_dtypes and more), while
``aia run`` and ``aia bench`` only need the graph's skeleton: the IR and opset
versions, the producer, the graph's inputs and outputs with their dims, the
nodes (op type, inputs, outputs) and the initializers' names, dims and
external-data entries. This module decodes exactly that from the protobuf wire
format (https://protobuf.dev/programming-guides/encoding/), skipping tensor
bytes without copying them (the file is memory-mapped), so a 90 MB model is
scanned in a few milliseconds.

Field numbers are those of ``onnx/onnx.proto`` (IR version 10). Fields this
module does not know are skipped, as protobuf does. A malformed file raises
:class:`ScanError`, whose text says what is wrong and where.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

Dim = int | str | None

# TensorProto.DataLocation
EXTERNAL = 1


class ScanError(ValueError):
    """The bytes are not a well-formed protobuf message of the expected shape."""


@dataclass
class TensorInfo:
    name: str = ""
    dims: tuple[int, ...] = ()
    data_type: int = 0
    data_location: int = 0
    external_data: dict[str, str] = field(default_factory=dict)


@dataclass
class ValueInfo:
    name: str = ""
    elem_type: int | None = None  # None: not a tensor (sequence, map, optional...)
    dims: tuple[Dim, ...] | None = None  # None: rank unknown; a dim: int, param name or None


@dataclass
class NodeInfo:
    name: str = ""
    op_type: str = ""
    domain: str = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    subgraphs: list[GraphInfo] = field(default_factory=list)
    tensors: list[TensorInfo] = field(default_factory=list)  # attribute tensors


@dataclass
class GraphInfo:
    name: str = ""
    nodes: list[NodeInfo] = field(default_factory=list)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)
    initializers: list[TensorInfo] = field(default_factory=list)


@dataclass
class ModelInfo:
    ir_version: int = 0
    opset_import: list[tuple[str, int]] = field(default_factory=list)
    producer_name: str = ""
    producer_version: str = ""
    graph: GraphInfo | None = None

    @property
    def opset(self) -> int | None:
        """The version of the default (``ai.onnx``) domain, if imported."""
        return next((v for d, v in self.opset_import if d in ("", "ai.onnx")), None)

    def all_tensors(self) -> list[TensorInfo]:
        """Every tensor with data: initializers and attribute tensors, subgraphs included."""
        out: list[TensorInfo] = []
        stack = [self.graph] if self.graph is not None else []
        while stack:
            g = stack.pop()
            out.extend(g.initializers)
            for n in g.nodes:
                out.extend(n.tensors)
                stack.extend(n.subgraphs)
        return out


# ----------------------------------------------------------------------------- wire format


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise ScanError(f"truncated varint at byte {pos}")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ScanError(f"varint too long at byte {pos}")


def _fields(buf: memoryview, start: int, end: int):
    """Yield (field number, wire type, value) where value is an int or (start, end)."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ScanError(f"field number 0 at byte {pos}")
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, 0, value
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise ScanError(
                    f"truncated: field {number} needs {length} bytes at byte {pos}, "
                    f"only {end - pos} left"
                )
            yield number, 2, (pos, pos + length)
            pos += length
        elif wire == 1:
            if pos + 8 > end:
                raise ScanError(f"truncated 64-bit field at byte {pos}")
            yield number, 1, int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wire == 5:
            if pos + 4 > end:
                raise ScanError(f"truncated 32-bit field at byte {pos}")
            yield number, 5, int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            raise ScanError(f"invalid wire type {wire} for field {number} at byte {pos}")
    if pos != end:
        raise ScanError(f"message overruns its length at byte {pos}")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _str(buf: memoryview, span: tuple[int, int]) -> str:
    return bytes(buf[span[0] : span[1]]).decode("utf-8", errors="replace")


def _expect(wire: int, want: int, what: str) -> None:
    if wire != want:
        raise ScanError(f"{what} has wire type {wire}, expected {want}")


def _ints(buf: memoryview, wire: int, value, out: list[int]) -> None:
    """A repeated int64 field, packed (wire type 2) or not."""
    if wire == 0:
        out.append(_signed(value))
    elif wire == 2:
        pos, end = value
        while pos < end:
            v, pos = _varint(buf, pos, end)
            out.append(_signed(v))
    else:
        raise ScanError(f"repeated integer field has wire type {wire}")


def _tensor(buf: memoryview, span: tuple[int, int]) -> TensorInfo:
    t = TensorInfo()
    dims: list[int] = []
    for number, wire, value in _fields(buf, *span):
        if number == 1:
            _ints(buf, wire, value, dims)
        elif number == 2 and wire == 0:
            t.data_type = value
        elif number == 8 and wire == 2:
            t.name = _str(buf, value)
        elif number == 13 and wire == 2:  # StringStringEntryProto
            k = v = ""
            for n2, w2, val2 in _fields(buf, *value):
                if w2 == 2 and n2 == 1:
                    k = _str(buf, val2)
                elif w2 == 2 and n2 == 2:
                    v = _str(buf, val2)
            t.external_data[k] = v
        elif number == 14 and wire == 0:
            t.data_location = value
    t.dims = tuple(dims)
    return t


def _value_info(buf: memoryview, span: tuple[int, int]) -> ValueInfo:
    vi = ValueInfo()
    for number, wire, value in _fields(buf, *span):
        if number == 1 and wire == 2:
            vi.name = _str(buf, value)
        elif number == 2 and wire == 2:  # TypeProto
            for n2, w2, val2 in _fields(buf, *value):
                if n2 == 1 and w2 == 2:  # tensor_type
                    _tensor_type(buf, val2, vi)
    return vi


def _tensor_type(buf: memoryview, span: tuple[int, int], vi: ValueInfo) -> None:
    vi.elem_type = 0
    for number, wire, value in _fields(buf, *span):
        if number == 1 and wire == 0:
            vi.elem_type = value
        elif number == 2 and wire == 2:  # TensorShapeProto
            dims: list[Dim] = []
            for n2, w2, val2 in _fields(buf, *value):
                if n2 != 1 or w2 != 2:
                    continue
                dim: Dim = None
                for n3, w3, val3 in _fields(buf, *val2):
                    if n3 == 1 and w3 == 0:
                        dim = _signed(val3)
                    elif n3 == 2 and w3 == 2:
                        dim = _str(buf, val3) or None
                dims.append(dim)
            vi.dims = tuple(dims)


def _node(buf: memoryview, span: tuple[int, int], depth: int) -> NodeInfo:
    node = NodeInfo()
    inputs: list[str] = []
    outputs: list[str] = []
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == 1:
            inputs.append(_str(buf, value))
        elif number == 2:
            outputs.append(_str(buf, value))
        elif number == 3:
            node.name = _str(buf, value)
        elif number == 4:
            node.op_type = _str(buf, value)
        elif number == 7:
            node.domain = _str(buf, value)
        elif number == 5:  # AttributeProto
            for n2, w2, val2 in _fields(buf, *value):
                if w2 != 2:
                    continue
                if n2 == 5 or n2 == 10:  # t, tensors
                    node.tensors.append(_tensor(buf, val2))
                elif n2 == 6 or n2 == 11:  # g, graphs
                    node.subgraphs.append(_graph(buf, val2, depth + 1))
    node.inputs, node.outputs = tuple(inputs), tuple(outputs)
    return node


_MAX_DEPTH = 64  # nested subgraphs; deeper is refused rather than recursed into


def _graph(buf: memoryview, span: tuple[int, int], depth: int = 0) -> GraphInfo:
    if depth > _MAX_DEPTH:
        raise ScanError(f"subgraphs nested more than {_MAX_DEPTH} deep")
    g = GraphInfo()
    for number, wire, value in _fields(buf, *span):
        if wire != 2:
            continue
        if number == 1:
            g.nodes.append(_node(buf, value, depth))
        elif number == 2:
            g.name = _str(buf, value)
        elif number == 5:
            g.initializers.append(_tensor(buf, value))
        elif number == 11:
            g.inputs.append(_value_info(buf, value))
        elif number == 12:
            g.outputs.append(_value_info(buf, value))
    return g


def scan_bytes(data: bytes | memoryview) -> ModelInfo:
    """Decode the skeleton of a serialized ModelProto."""
    buf = memoryview(data)
    model = ModelInfo()
    for number, wire, value in _fields(buf, 0, len(buf)):
        if number == 1:
            _expect(wire, 0, "ir_version")
            model.ir_version = _signed(value)
        elif number == 2 and wire == 2:
            model.producer_name = _str(buf, value)
        elif number == 3 and wire == 2:
            model.producer_version = _str(buf, value)
        elif number == 7:
            _expect(wire, 2, "graph")
            model.graph = _graph(buf, value)
        elif number == 8:
            _expect(wire, 2, "opset_import")
            domain, version = "", 0
            for n2, w2, val2 in _fields(buf, *value):
                if n2 == 1 and w2 == 2:
                    domain = _str(buf, val2)
                elif n2 == 2 and w2 == 0:
                    version = _signed(val2)
            model.opset_import.append((domain, version))
    return model


_MEMO: dict[tuple[str, int, int, int], ModelInfo] = {}


def scan_model(path: str | Path) -> ModelInfo:
    """Decode the skeleton of the ONNX file at ``path`` (external data is not read).

    Remembered per process by the file's path, inode, size and mtime: one run asks
    several times (the model check, vocabulary sizes, the batch fit, the node count).
    Treat the answer as read-only.
    """
    st = os.stat(path)
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    found = _MEMO.get(key)
    if found is None:
        found = _scan_file(path)
        if len(_MEMO) > 32:
            _MEMO.clear()
        _MEMO[key] = found
    return found


def _scan_file(path: str | Path) -> ModelInfo:
    with open(path, "rb") as fh:
        try:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            return scan_bytes(b"")
    view = memoryview(mm)
    error: str | None = None
    try:
        model = scan_bytes(view)
    except ScanError as exc:
        # Keep only the text: the traceback's frames hold views into the mapping,
        # which could not be closed while they live.
        error = str(exc)
    view.release()
    mm.close()
    if error is not None:
        raise ScanError(error)
    return model
