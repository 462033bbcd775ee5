"""``detect()`` on the machine the tests run on, checked against facts read here independently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from aialliance_cli.hardware import detect
from aialliance_cli.hardware.inventory import Inventory

CPUINFO = Path("/proc/cpuinfo")
pytestmark = pytest.mark.skipif(not CPUINFO.exists(), reason="needs Linux /proc/cpuinfo")


def _first_block() -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in CPUINFO.read_text().splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def test_cpu_matches_proc_cpuinfo() -> None:
    info = _first_block()
    cpu = detect(refresh=True).cpu
    if "vendor_id" in info and "flags" in info:
        expected = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(info["vendor_id"], "other")
        flags = set(info["flags"].split())
        assert cpu.vendor == expected
        assert cpu.model_name == info["model name"]
        assert cpu.has("avx2") == ("avx2" in flags)
        assert cpu.has("avx512f") == ("avx512f" in flags)
        assert cpu.has("fma") == ("fma" in flags)
        assert cpu.has("amx_tile") == ("amx_tile" in flags)
    else:
        features = set(info.get("Features", "").split())
        assert cpu.vendor == "arm"
        assert cpu.has("neon") == ("asimd" in features)
        assert cpu.has("sve") == ("sve" in features)
    assert cpu.logical_cores == os.cpu_count()
    assert cpu.physical_cores is not None and 1 <= cpu.physical_cores <= cpu.logical_cores
    assert cpu.sockets is not None and cpu.sockets >= 1


def test_memory_matches_psutil() -> None:
    memory = detect(refresh=True).memory
    assert memory.total_bytes == pytest.approx(psutil.virtual_memory().total, rel=0.01)
    assert memory.available_bytes is not None
    assert 0 < memory.available_bytes <= memory.total_bytes


def test_software_matches_onnxruntime() -> None:
    import onnxruntime

    software = detect(refresh=True).software
    assert software.ort_version == onnxruntime.__version__
    assert software.ort_error is None
    assert set(software.available_providers) == set(onnxruntime.get_available_providers())
    assert "CPUExecutionProvider" in software.available_providers
    names = [d.name for d in software.ort_distributions]
    assert any(n.startswith("onnxruntime") for n in names)
    assert software.os == "Linux" and software.kernel == os.uname().release


def test_pci_accelerators_are_real_devices() -> None:
    for acc in detect(refresh=True).accelerators:
        if "sysfs" in acc.sources:
            assert Path("/sys/bus/pci/devices", acc.pci_address or "?").exists()
        for node in acc.device_nodes:
            assert Path(node).exists()


def test_detect_is_cached_and_serialisable() -> None:
    first = detect(refresh=True)
    assert detect() is first
    again = Inventory.from_dict(json.loads(json.dumps(first.to_dict())))
    assert again == first


def test_detect_imports_no_heavy_ml_library() -> None:
    code = (
        "import sys, json\n"
        "import aialliance_cli.hardware as hw\n"
        "light = 'onnxruntime' not in sys.modules\n"
        "inv = hw.detect()\n"
        "heavy = [m for m in ('torch', 'transformers', 'optimum') if m in sys.modules]\n"
        "print(json.dumps({'light': light, 'heavy': heavy, 'ort': inv.software.ort_version}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["light"], "importing aialliance_cli.hardware must not import onnxruntime"
    assert result["heavy"] == []
    assert result["ort"]
