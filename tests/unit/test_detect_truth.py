"""aia detect is right about this machine (issue 11): the clock from /proc/cpuinfo where sysfs
has none, the ISA features that matter in the reason, a lone CPU EP not "last", and an EP a
registered environment offers shown as available there."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from aialliance_cli.hardware.cpu import probe_cpu
from aialliance_cli.providers.planner import plan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_providers_planner import X86, machine  # noqa: E402

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
cpu MHz\t\t: 2300.000
flags\t\t: fpu lm sse4_2 avx avx2 fma f16c avx512f avx512_vnni avx512_bf16 amx_int8

"""


def test_clock_comes_from_proc_cpuinfo_when_sysfs_has_no_cpufreq(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(CPUINFO)
    cpu, _ = probe_cpu(tmp_path)
    assert cpu.base_mhz is None and cpu.max_mhz is None
    assert cpu.cpuinfo_mhz == 2300.0


def test_reason_names_vnni_bf16_amx_and_a_lone_cpu_ep_is_not_last() -> None:
    inv = machine("intel", "Xeon", features=(*X86, "avx512f", "avx512_vnni", "avx512_bf16",
                                            "amx_int8"))  # fmt: skip
    (only,) = plan(inv, ["CPUExecutionProvider"]).choices
    assert "VNNI" in only.reason and "BF16" in only.reason and "AMX" in only.reason
    assert "comes last" not in only.reason and "the only EP usable here" in only.reason
    several = plan(inv, ["OpenVINOExecutionProvider", "CPUExecutionProvider"]).choices
    assert len(several) > 1 and "comes last" in several[-1].reason
    plain = plan(machine("amd", "EPYC"), ["CPUExecutionProvider"]).choices[0]
    assert "no VNNI" in plain.reason


def test_an_ep_of_a_registered_environment_is_shown_available_there() -> None:
    from aialliance_cli.envs.registry import registry_path

    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "schema": "aia.envs/1",
                "envs": {
                    "ov": {
                        "python": sys.executable,
                        "onnxruntime": "1.24.1",
                        "distribution": "onnxruntime-openvino",
                        "providers": ["OpenVINOExecutionProvider", "CPUExecutionProvider"],
                    }
                },
            }
        )
    )
    data = json.loads(CliRunner().invoke(app, ["detect", "--json"]).stdout)
    assert data["environments"]["OpenVINOExecutionProvider"] == ["ov"]
    passed = {p["ep"]: p["reason"] for p in data["plan"]["passed_over"]}
    r = CliRunner().invoke(app, ["detect"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    if "not in this build" in passed.get("OpenVINOExecutionProvider", ""):  # an Intel CPU
        assert "available in environment 'ov'" in " ".join(r.stdout.split())


def test_openvino_is_not_suggested_on_a_non_intel_cpu() -> None:
    """docs/providers.md: planned when installed on other x86-64 CPUs, never suggested."""
    passed = {
        p.ep: p.reason for p in plan(machine("amd", "EPYC"), ["CPUExecutionProvider"]).passed_over
    }
    assert "install onnxruntime" not in passed["OpenVINOExecutionProvider"]
    assert "not suggested" in passed["OpenVINOExecutionProvider"]
    intel = {p.ep: p.reason for p in plan(machine("intel", "Xeon"), []).passed_over}
    assert "install onnxruntime-openvino" in intel["OpenVINOExecutionProvider"]
