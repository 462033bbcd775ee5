"""EP names: canonical and short names resolve; unknown names get a did-you-mean (exit 2)."""

from __future__ import annotations

import pytest

from aialliance_cli.errors import ExitCode, UnknownProviderError
from aialliance_cli.providers.catalogue import (
    CATALOGUE,
    get_spec,
    known_short_names,
    resolve_ep_name,
    short_name,
)


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("cpu", "CPUExecutionProvider"),
        ("CPU", "CPUExecutionProvider"),
        ("openvino", "OpenVINOExecutionProvider"),
        ("OV", "OpenVINOExecutionProvider"),
        ("cuda", "CUDAExecutionProvider"),
        ("tensorrt", "TensorrtExecutionProvider"),
        ("trt", "TensorrtExecutionProvider"),
        ("trt-rtx", "NvTensorRTRTXExecutionProvider"),
        ("nv", "NvTensorRTRTXExecutionProvider"),
        ("migraphx", "MIGraphXExecutionProvider"),
        ("rocm", "ROCMExecutionProvider"),
        ("dml", "DmlExecutionProvider"),
        ("DirectML", "DmlExecutionProvider"),
        ("vitisai", "VitisAIExecutionProvider"),
        ("ryzenai", "VitisAIExecutionProvider"),
        ("qnn", "QNNExecutionProvider"),
        ("coreml", "CoreMLExecutionProvider"),
        ("webgpu", "WebGpuExecutionProvider"),
        ("xnnpack", "XnnpackExecutionProvider"),
        ("acl", "ACLExecutionProvider"),
        ("azure", "AzureExecutionProvider"),
        ("CUDAExecutionProvider", "CUDAExecutionProvider"),
        ("cudaexecutionprovider", "CUDAExecutionProvider"),
        (" DmlExecutionProvider ", "DmlExecutionProvider"),
    ],
)
def test_resolve_known_names(typed: str, canonical: str) -> None:
    assert resolve_ep_name(typed) == canonical


@pytest.mark.parametrize(
    ("typed", "suggestion"),
    [("cdua", "'cuda'"), ("openvion", "'openvino'"), ("migrapx", "'migraphx'"), ("dmll", "'dml'")],
)
def test_unknown_name_suggests_the_closest(typed: str, suggestion: str) -> None:
    with pytest.raises(UnknownProviderError) as info:
        resolve_ep_name(typed)
    err = info.value
    assert err.exit_code == ExitCode.BAD_INPUT == 2
    assert f"'{typed}'" in err.message
    assert f"Did you mean {suggestion}" in err.message
    assert "Known short names: cpu" in err.message or "cpu," in err.message


def test_unknown_name_without_close_match_lists_short_names() -> None:
    with pytest.raises(UnknownProviderError) as info:
        resolve_ep_name("quantumfoo")
    assert "Did you mean" not in info.value.message
    for s in ("cpu", "cuda", "openvino", "dml", "qnn"):
        assert s in info.value.message


def test_short_name_round_trip() -> None:
    for spec in CATALOGUE:
        assert resolve_ep_name(short_name(spec.name)) == spec.name
    assert short_name("CUDAExecutionProvider") == "cuda"
    assert short_name("ContosoPluginExecutionProvider") == "ContosoPluginExecutionProvider"
    assert known_short_names()[-2:] == ("cpu", "azure")


def test_aliases_are_unique() -> None:
    seen: dict[str, str] = {}
    for spec in CATALOGUE:
        for alias in (spec.name.lower(), *(s.lower() for s in spec.short)):
            assert seen.setdefault(alias, spec.name) == spec.name


def test_catalogue_facts() -> None:
    assert get_spec("dml").os == ("Windows",)
    assert get_spec("coreml").os == ("Darwin",)
    assert get_spec("azure").remote
    assert get_spec("openvino").full_builds == ("onnxruntime-openvino",)
    assert get_spec("openvino").plugin_packages == ("onnxruntime-ep-openvino",)
    assert get_spec("cuda").full_builds == ("onnxruntime-gpu",)
    assert get_spec("trt-rtx").plugin_packages == ("onnxruntime-ep-nv-tensorrt-rtx",)
    assert get_spec("webgpu").plugin_packages == ("onnxruntime-ep-webgpu",)
    assert "ryzenai" in (get_spec("vitisai").install_url or "")
    ov_gpu = get_spec("ov").targets_for("gpu")[0]
    assert ov_gpu.default_options(0) == {"device_type": "GPU"}
    assert ov_gpu.default_options(1, several=True) == {"device_type": "GPU.1"}
    assert get_spec("cuda").targets[0].default_options(2) == {"device_id": "2"}
