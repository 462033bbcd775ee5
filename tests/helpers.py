"""Small real ONNX models built by the tests with onnx.helper."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def matmul_model(path: Path, *, batch: str | int = "batch", k: int = 16, n: int = 8) -> Path:
    """y = relu(x @ W): x (batch, k) float32."""
    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((k, n)).astype(np.float32), "W"
    )
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, n])
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(nodes, "mm", [x], [y], initializer=[w])
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def embedding_model(path: Path, vocab: int = 50) -> Path:
    """Token ids -> embedding rows, masked: exercises id ranges and masks."""
    table = numpy_helper.from_array(
        np.random.default_rng(1).standard_normal((vocab, 4)).astype(np.float32), "E"
    )
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", "sequence", 4])
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["g"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axes"], ["m3"]),
        helper.make_node("Mul", ["g", "m3"], ["out"]),
    ]
    axes = numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes")
    graph = helper.make_graph(nodes, "emb", [ids, mask], [out], initializer=[table, axes])
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


ALL_DTYPES = {
    "f32": TensorProto.FLOAT,
    "f16": TensorProto.FLOAT16,
    "f64": TensorProto.DOUBLE,
    "i8": TensorProto.INT8,
    "i16": TensorProto.INT16,
    "i32": TensorProto.INT32,
    "i64": TensorProto.INT64,
    "u8": TensorProto.UINT8,
    "u16": TensorProto.UINT16,
    "u32": TensorProto.UINT32,
    "u64": TensorProto.UINT64,
    "b": TensorProto.BOOL,
    "s": TensorProto.STRING,
}


def identity_all_dtypes(path: Path) -> Path:
    """One Identity per tensor dtype ONNX Runtime accepts, with symbolic and unnamed dims."""
    inputs, outputs, nodes = [], [], []
    for name, dt in ALL_DTYPES.items():
        inputs.append(helper.make_tensor_value_info(f"in_{name}", dt, ["batch", None, 3]))
        outputs.append(helper.make_tensor_value_info(f"out_{name}", dt, ["batch", None, 3]))
        nodes.append(helper.make_node("Identity", [f"in_{name}"], [f"out_{name}"]))
    graph = helper.make_graph(nodes, "dtypes", inputs, outputs)
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def fixed_batch_model(path: Path) -> Path:
    return matmul_model(path, batch=1)


def tanh_sum_model(path: Path) -> Path:
    """MatMul -> Tanh -> ReduceSum over x [batch, 32]: one node per op type, none fused."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["a"], name="mm"),
            helper.make_node("Tanh", ["a"], ["b"], name="tanh"),
            helper.make_node("ReduceSum", ["b", "axes"], ["y"], name="sum", keepdims=0),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])],
        [
            numpy_helper.from_array(np.full((32, 64), 0.01, np.float32), "w"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)
    return path


def scaled_copy(src: Path, dest: Path, factor: float = 1.5) -> Path:
    """A deliberately broken variant: every float initializer multiplied by ``factor``."""
    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(init) * np.float32(factor)
            init.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), init.name))
    onnx.save(model, str(dest))
    return dest


def tanh_embedding_model(path: Path, vocab: int = 200, dim: int = 16) -> Path:
    """input_ids, attention_mask -> tanh(E[ids] @ W) (batch, sequence, dim): a tiny encoder."""
    rng = np.random.default_rng(2)
    table = numpy_helper.from_array(rng.standard_normal((vocab, dim)).astype(np.float32), "E")
    w = numpy_helper.from_array(rng.standard_normal((dim, dim)).astype(np.float32) * 0.5, "W")
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])
    out = helper.make_tensor_value_info(
        "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", dim]
    )
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["g"]),
        helper.make_node("MatMul", ["g", "W"], ["h"]),
        helper.make_node("Tanh", ["h"], ["t"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axes"], ["m3"]),
        helper.make_node("Mul", ["t", "m3"], ["last_hidden_state"]),
    ]
    axes = numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes")
    graph = helper.make_graph(nodes, "enc", [ids, mask], [out], initializer=[table, w, axes])
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


# ----------------------------------------------------------------------------- processes
# Finding aia's worker and the moment it measures, from /proc (Linux).


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _worker_of(proc: subprocess.Popen[str], timeout: float = 90) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for child in _children(proc.pid):
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"aialliance_cli.runtime.worker" in cmd:
                return child
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no worker started")


def _writes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    return 0


def _wait_for_loop(worker: int, timeout: float = 90) -> None:
    """Until the worker is in its measuring loop: it then reports progress ten times a
    second, so its count of write calls grows in every quarter second (before the loop
    it writes a status line now and then)."""
    end = time.monotonic() + timeout
    prev, streak = _writes(worker), 0
    while time.monotonic() < end:
        time.sleep(0.25)
        try:
            cur = _writes(worker)
        except OSError:
            return
        streak = streak + 1 if cur > prev else 0
        prev = cur
        if streak >= 4:
            return
    raise AssertionError("the worker never started measuring")


def variant_profile(folder: Path) -> Path:
    """A MatMul profile with an int8 variant and a deliberately broken one (weights x 1.5)."""
    matmul_model(folder / "mm.onnx", k=64, n=32)
    scaled_copy(folder / "mm.onnx", folder / "broken.onnx", 1.5)
    path = folder / "mm.yaml"
    path.write_text(
        "schema: aia.profile/1\nname: mm\nmodel: mm.onnx\nvariants:\n"
        "  int8: {quantize: dynamic}\n  broken: {model: broken.onnx}\n",
        encoding="utf-8",
    )
    return path


def fault_env(tmp: Path, *, mark: bool = False) -> dict[str, str]:
    """The environment of an `aia` that a fault test signals: its own TMPDIR and AIA_HOME
    under ``tmp`` and this checkout first on PYTHONPATH; ``mark`` tags every process it
    starts (AIA_FAULT_TEST) so that a test can find any left behind."""
    import os

    env = dict(os.environ)
    env["TMPDIR"] = str(tmp / "tmp")
    env["AIA_HOME"] = str(tmp / "home")
    if mark:
        env["AIA_FAULT_TEST"] = str(tmp)
    env["PYTHONPATH"] = (
        str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    )
    (tmp / "tmp").mkdir(exist_ok=True)
    return env


def aia_popen(tmp: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """`aia ARGS` in ``tmp``, in a process group of its own with SIGINT not ignored, as at
    a terminal; stdout and stderr piped as text."""
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", "from aialliance_cli.cli.main import main; main()", *args],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
