"""Plugin EP discovery, registration and device listing.

Discovery runs on real (tiny) installed distributions written to a temp dir;
ONNX Runtime is a fake here because the plugin libraries are not real ones.
The real ORT is exercised in tests/e2e/test_plugins_real.py.
"""

from __future__ import annotations

import enum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aialliance_cli.providers.plugins import (
    PluginLib,
    find_plugin_libraries,
    plugin_devices,
    register_plugins,
    select_ep_devices,
)


def install(site: Path, dist: str, module: str, init: str | None, files: list[str] = ()) -> None:
    """Write a minimal installed distribution (dist-info + module) under ``site``."""
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    records = []
    if init is not None:
        (site / module).mkdir()
        (site / module / "__init__.py").write_text(init)
        (info / "top_level.txt").write_text(module + "\n")
        records.append(f"{module}/__init__.py,,")
    for f in files:
        (site / f).parent.mkdir(parents=True, exist_ok=True)
        (site / f).write_bytes(b"\x7fELF")
        records.append(f"{f},,")
    (info / "RECORD").write_text("".join(r + "\n" for r in records))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install(
        tmp_path,
        "onnxruntime-ep-fake",
        "onnxruntime_ep_fake",
        "from pathlib import Path\n"
        "def get_library_path():\n"
        "    return str(Path(__file__).parent / 'libfake_ep.so')\n"
        "def get_ep_names():\n"
        "    return ['FakeExecutionProvider', 'FakeExecutionProvider.AUTO']\n",
        files=["onnxruntime_ep_fake/libfake_ep.so"],
    )
    # No helper functions: the library is found in the package's file list.
    install(
        tmp_path,
        "onnxruntime-ep-webgpu",
        "onnxruntime_ep_webgpu",
        "",
        files=["onnxruntime_ep_webgpu/libonnxruntime_providers_webgpu.so"],
    )
    install(tmp_path, "onnxruntime-ep-broken", "onnxruntime_ep_broken", "raise RuntimeError('no')")
    install(tmp_path, "onnxruntime-ep-meta", "onnxruntime_ep_meta", None)  # a meta-package
    install(tmp_path, "not-a-plugin", "not_a_plugin", "def get_library_path(): return 'x'")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


class DeviceType(enum.Enum):
    CPU = 0
    GPU = 1
    NPU = 2


def ep_device(ep: str, kind: str, vendor: str = "Intel", vid: int = 0x8086) -> Any:
    hw = SimpleNamespace(
        type=DeviceType[kind], vendor=vendor, vendor_id=vid, device_id=0x7D55, metadata={}
    )
    return SimpleNamespace(
        ep_name=ep, ep_vendor="Contoso", ep_metadata={"ov_device": kind}, ep_options={}, device=hw
    )


class FakeOrt:
    __version__ = "1.32.0"

    def __init__(self, devices: list[Any] = ()) -> None:
        self.calls: list[tuple[str, str]] = []
        self.devices = list(devices)

    def register_execution_provider_library(self, name: str, path: str) -> None:
        self.calls.append((name, path))
        if "webgpu" in path:
            raise RuntimeError("Failed to load library: undefined symbol")

    def get_ep_devices(self) -> list[Any]:
        return self.devices


def test_find_plugin_libraries(site: Path) -> None:
    libs = {lib.package: lib for lib in find_plugin_libraries()}
    fake = libs["onnxruntime-ep-fake"]
    assert fake.ep_name == "FakeExecutionProvider"
    assert fake.ep_names == ("FakeExecutionProvider", "FakeExecutionProvider.AUTO")
    assert fake.library_path == str(site / "onnxruntime_ep_fake" / "libfake_ep.so")
    assert fake.version == "0.1.0"
    webgpu = libs["onnxruntime-ep-webgpu"]
    assert webgpu.ep_name == "WebGpuExecutionProvider"  # from aia's catalogue
    assert webgpu.library_path.endswith("libonnxruntime_providers_webgpu.so")
    assert "onnxruntime-ep-meta" not in libs
    assert "onnxruntime-ep-broken" not in libs
    assert "not-a-plugin" not in libs


def test_register_once_per_process_and_tolerant(site: Path) -> None:
    ort = FakeOrt()
    first = {r.package: r for r in register_plugins(ort)}
    assert first["onnxruntime-ep-fake"].ok
    assert first["onnxruntime-ep-fake"].registration_name == "onnxruntime-ep-fake"
    assert not first["onnxruntime-ep-webgpu"].ok
    assert "undefined symbol" in first["onnxruntime-ep-webgpu"].note
    assert not first["onnxruntime-ep-broken"].ok
    assert "importing onnxruntime_ep_broken failed" in first["onnxruntime-ep-broken"].note
    calls = list(ort.calls)
    again = register_plugins(ort)
    assert ort.calls == calls  # nothing registered twice
    assert [r.ok for r in again] == [r.ok for r in first.values()]


def test_already_registered_counts_as_registered() -> None:
    class Already(FakeOrt):
        def register_execution_provider_library(self, name: str, path: str) -> None:
            raise RuntimeError(f"library {name} is already registered")

    lib = PluginLib("onnxruntime-ep-x", "XExecutionProvider", "/x/libx.so")
    (r,) = register_plugins(Already(), [lib])
    assert r.ok and r.note == "already registered" and r.ep_names == ("XExecutionProvider",)


def test_old_onnxruntime_cannot_register() -> None:
    old = SimpleNamespace(__version__="1.20.1")
    (r,) = register_plugins(old, [PluginLib("onnxruntime-ep-x", "X", "/x/libx.so")])
    assert not r.ok and "1.23" in r.note and "1.20.1" in r.note
    assert plugin_devices(old) == []


def test_plugin_devices_as_plain_data() -> None:
    ort = FakeOrt([ep_device("CPUExecutionProvider", "CPU"), ep_device("FakeEP", "NPU")])
    devices = plugin_devices(ort)
    assert [(d.ep_name, d.device_type) for d in devices] == [
        ("CPUExecutionProvider", "cpu"),
        ("FakeEP", "npu"),
    ]
    assert devices[1].vendor_id == "0x8086" and devices[1].device_id == 0x7D55
    assert devices[1].ep_metadata == {"ov_device": "NPU"}
    raw = select_ep_devices(ort, "FakeEP", "npu")
    assert raw == [ort.devices[1]]
    assert select_ep_devices(ort, "FakeEP", "gpu") == []


def test_plugin_devices_survives_a_failing_ort() -> None:
    class Broken(FakeOrt):
        def get_ep_devices(self) -> list[Any]:
            raise RuntimeError("boom")

    assert plugin_devices(Broken()) == []
