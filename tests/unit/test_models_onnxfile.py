"""check_onnx_file: every way a model file can be unusable, on real files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from aialliance_cli.errors import ExitCode, ModelError
from aialliance_cli.models.onnxfile import check_onnx_file


def tiny_model(weights: int = 4) -> onnx.ModelProto:
    """y = x + w, with w an initializer of ``weights`` floats."""
    w = numpy_helper.from_array(np.arange(weights, dtype=np.float32), name="w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [weights])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [weights])],
        initializer=[w],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="aia-tests"
    )
    model.ir_version = 8
    return model


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    return path


@pytest.fixture
def external_model(tmp_path: Path) -> Path:
    folder = tmp_path / "ext"
    folder.mkdir()
    path = folder / "big.onnx"
    onnx.save(
        tiny_model(weights=4096),
        str(path),
        save_as_external_data=True,
        location="big.onnx.data",
        size_threshold=0,
    )
    return path


def _error(path: Path) -> ModelError:
    with pytest.raises(ModelError) as info:
        check_onnx_file(path)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert "\n" not in str(info.value)  # one paragraph
    return info.value


def test_valid_model(model_file: Path) -> None:
    info = check_onnx_file(model_file)
    assert info.path == model_file
    assert info.opset == 17
    assert info.ir_version == 8
    assert info.producer == "aia-tests"
    assert info.external_data == ()
    assert info.size_bytes == model_file.stat().st_size


def test_valid_model_loads_in_onnxruntime(model_file: Path) -> None:
    import onnxruntime as ort

    check_onnx_file(model_file)
    sess = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": np.ones(4, dtype=np.float32)})
    np.testing.assert_allclose(y, [1, 2, 3, 4])


def test_missing_file(tmp_path: Path) -> None:
    err = _error(tmp_path / "nope.onnx")
    assert "nope.onnx" in str(err) and "does not exist" in str(err)


def test_missing_folder_is_mentioned(tmp_path: Path) -> None:
    err = _error(tmp_path / "nowhere" / "nope.onnx")
    assert "folder" in str(err)


def test_directory(tmp_path: Path, model_file: Path) -> None:
    err = _error(tmp_path)
    assert "directory" in str(err) and "tiny.onnx" in str(err)


def test_unreadable_file(model_file: Path) -> None:
    # pytest's tmp folders are private to their owner, so use a world-readable folder.
    folder = Path(tempfile.mkdtemp(prefix="aia-perm-"))
    try:
        folder.chmod(0o755)
        path = folder / "locked.onnx"
        path.write_bytes(model_file.read_bytes())
        path.chmod(0)
        if os.geteuid() == 0:
            # root reads anything; drop to nobody for the check (onnx is imported already)
            os.seteuid(65534)
            try:
                with pytest.raises(ModelError) as info:
                    check_onnx_file(path)
            finally:
                os.seteuid(0)
            err = info.value
        else:
            err = _error(path)
        assert "locked.onnx" in str(err) and "permission denied" in str(err)
    finally:
        (folder / "locked.onnx").unlink(missing_ok=True)
        folder.rmdir()


def test_yaml_file_named_onnx(tmp_path: Path) -> None:
    path = tmp_path / "profile.onnx"
    path.write_text("name: minilm\nmodel:\n  file: model.onnx\nruns: 10\n")
    err = _error(path)
    assert "profile.onnx" in str(err) and "not a valid ONNX model" in str(err)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "readme.onnx"
    path.write_text("This is not a model, just some words.\n" * 20)
    assert "not a valid ONNX model" in str(_error(path))


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    assert "empty" in str(_error(path))


def test_truncated_model(tmp_path: Path) -> None:
    full = tiny_model(weights=2048).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(full[: len(full) // 2])
    err = _error(path)
    assert "cut.onnx" in str(err) and "truncated" in str(err)


def test_external_data_present(external_model: Path) -> None:
    info = check_onnx_file(external_model)
    assert info.external_data == ("big.onnx.data",)
    data = external_model.parent / "big.onnx.data"
    assert info.size_bytes == external_model.stat().st_size + data.stat().st_size


def test_external_data_missing(external_model: Path) -> None:
    (external_model.parent / "big.onnx.data").unlink()
    err = _error(external_model)
    assert "big.onnx.data" in str(err) and "missing" in str(err)


def test_external_data_truncated(external_model: Path) -> None:
    data = external_model.parent / "big.onnx.data"
    data.write_bytes(data.read_bytes()[:100])
    err = _error(external_model)
    assert "big.onnx.data" in str(err) and "truncated" in str(err)
