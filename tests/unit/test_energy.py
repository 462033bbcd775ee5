"""Energy readers on fake sysfs trees and fake vendor modules; PowerMonitor on this machine."""

from __future__ import annotations

import json
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from aialliance_cli.hardware.energy import (
    AmdSmiPower,
    CpuSensors,
    EnergyReport,
    NvmlPower,
    PowerMonitor,
    RaplReader,
)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _rapl_tree(root: Path, packages: int = 1, energy: int = 1000, rng: int = 10**6) -> Path:
    cap = root / "sys/class/powercap"
    for p in range(packages):
        d = cap / f"intel-rapl:{p}"
        _write(d / "name", f"package-{p}\n")
        _write(d / "energy_uj", f"{energy}\n")
        _write(d / "max_energy_range_uj", f"{rng}\n")
        sub = cap / f"intel-rapl:{p}:0"
        _write(sub / "name", "core\n")
        _write(sub / "energy_uj", f"{energy // 2}\n")
        _write(sub / "max_energy_range_uj", f"{rng}\n")
    _write(cap / "intel-rapl/enabled", "1\n")  # the control-type dir is not a domain
    return root


def _ticking_reader(step_uj: int, rng: int) -> Callable[[Path], str]:
    """energy_uj files advance by step_uj at every read and wrap at rng."""
    counters: dict[Path, int] = {}

    def read(path: Path) -> str:
        if path.name == "energy_uj":
            counters[path] = (counters.get(path, 0) + step_uj) % rng
            return f"{counters[path]}\n"
        return path.read_text()

    return read


def test_rapl_discovers_packages_and_subdomains(tmp_path: Path) -> None:
    r = RaplReader(_rapl_tree(tmp_path, packages=2))
    assert r.available() and r.why_not() is None
    assert r.source == "powercap"
    assert [d.key for d in r.domains] == [
        "intel-rapl:0",
        "intel-rapl:0:0",
        "intel-rapl:1",
        "intel-rapl:1:0",
    ]
    assert r.package_keys() == ["intel-rapl:0", "intel-rapl:1"]
    assert {d.name for d in r.domains} == {"package-0", "package-1", "core"}
    assert r.read_uj()["intel-rapl:1"] == 1000


def test_rapl_wraparound(tmp_path: Path) -> None:
    r = RaplReader(_rapl_tree(tmp_path, rng=1000))
    assert r.delta_uj({"intel-rapl:0": 990}, {"intel-rapl:0": 10}) == {"intel-rapl:0": 20}
    assert r.delta_uj({"intel-rapl:0": 10}, {"intel-rapl:0": 30}) == {"intel-rapl:0": 20}


def test_rapl_missing_says_why(tmp_path: Path) -> None:
    r = RaplReader(tmp_path)
    assert not r.available()
    assert "intel-rapl:*" in r.why_not() and "VM" in r.why_not()


def test_rapl_permission_denied_says_why(tmp_path: Path) -> None:
    def read(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    r = RaplReader(_rapl_tree(tmp_path), read_text=read)
    assert not r.available()
    assert "permission denied" in r.why_not() and "5.10" in r.why_not()


def test_amd_energy_hwmon_fallback(tmp_path: Path) -> None:
    hw = tmp_path / "sys/class/hwmon/hwmon2"
    _write(hw / "name", "amd_energy\n")
    _write(hw / "energy1_input", "500\n")
    _write(hw / "energy1_label", "Ecore000\n")
    _write(hw / "energy17_input", "9000\n")
    _write(hw / "energy17_label", "Esocket0\n")
    r = RaplReader(tmp_path)
    assert r.available() and r.source == "amd_energy"
    assert len(r.package_keys()) == 1
    assert r.read_uj()[r.package_keys()[0]] == 9000


def _cpu_tree(root: Path, cur_khz: int, max_khz: int, throttle: int | None = None) -> None:
    for cpu in (0, 1):
        d = root / f"sys/devices/system/cpu/cpu{cpu}"
        _write(d / "cpufreq/scaling_cur_freq", f"{cur_khz}\n")
        _write(d / "cpufreq/cpuinfo_max_freq", f"{max_khz}\n")
        if throttle is not None:
            _write(d / "thermal_throttle/core_throttle_count", f"{throttle}\n")
    hw = root / "sys/class/hwmon/hwmon0"
    _write(hw / "name", "k10temp\n")
    _write(hw / "temp1_input", "65250\n")
    _write(hw / "temp3_input", "58000\n")


def _busy_stat_reader(busy: bool) -> Callable[[Path], str]:
    """/proc/stat whose CPUs gain 10 busy (or idle) jiffies at every read."""
    ticks = {"n": 0}

    def read(path: Path) -> str:
        if path.name == "stat" and path.parent.name == "proc":
            ticks["n"] += 10
            u, i = (ticks["n"], 0) if busy else (0, ticks["n"])
            return "cpu  0 0 0 0\n" + "".join(f"cpu{c} {u} 0 0 {i} 0 0 0 0\n" for c in (0, 1))
        return path.read_text()

    return read


def test_sensors_clock_temperature_and_cpuinfo_fallback(tmp_path: Path) -> None:
    _cpu_tree(tmp_path, 2_000_000, 3_000_000, throttle=4)
    s = CpuSensors(tmp_path)
    assert s.clocks_mhz() == {0: 2000.0, 1: 2000.0}
    assert s.reference_mhz() == {0: 3000.0, 1: 3000.0}
    assert s.temperature_c() == 65.25
    assert s.throttle_count() == 8
    other = tmp_path / "other"
    _write(other / "proc/cpuinfo", "processor\t: 0\ncpu MHz\t\t: 2300.5\n\nprocessor\t: 1\n")
    assert CpuSensors(other).clocks_mhz() == {0: 2300.5}


def test_monitor_integrates_wrapping_rapl_and_flags_slow_busy_clock(tmp_path: Path) -> None:
    _rapl_tree(tmp_path, rng=250_000)
    _cpu_tree(tmp_path, 2_000_000, 3_000_000)
    ticking = _ticking_reader(100_000, 250_000)  # 0.1 J per read, wraps every 2.5 reads
    busy = _busy_stat_reader(busy=True)

    def read(path: Path) -> str:
        return busy(path) if path.name == "stat" else ticking(path)

    with PowerMonitor(tmp_path, interval_s=0.02, probe_gpus=False, read_text=read) as mon:
        time.sleep(0.1)
    rep = mon.report
    assert rep.available and rep.why_not is None
    # Every sample reads each package counter once and sees exactly 0.1 J, wraps included.
    assert rep.cpu_energy_j == pytest.approx(0.1 * rep.samples)
    assert rep.cpu_avg_w == pytest.approx(rep.cpu_energy_j / rep.duration_s)
    assert rep.clock_mhz_min == rep.clock_mhz_max == 2000.0
    assert rep.temp_c_max == 65.25
    assert rep.throttled is True  # busy at 2.0 GHz < 90% of 3.0 GHz
    assert rep.sources == ("rapl:powercap",)
    per = rep.per_inference(10)
    assert per.joules_per_inference == pytest.approx(rep.cpu_energy_j / 10)
    json.dumps(per.to_dict())


def test_monitor_not_throttled_at_full_clock_and_counter_rise(tmp_path: Path) -> None:
    _cpu_tree(tmp_path, 3_000_000, 3_000_000, throttle=0)
    busy = _busy_stat_reader(busy=True)
    with PowerMonitor(tmp_path, interval_s=0.02, probe_gpus=False, read_text=busy) as mon:
        time.sleep(0.05)
    assert mon.report.throttled is False
    assert not mon.report.available and "intel-rapl" in mon.report.why_not
    assert mon.report.per_inference(5).joules_per_inference is None

    mon2 = PowerMonitor(tmp_path, interval_s=0.02, probe_gpus=False, read_text=busy).start()
    _write(tmp_path / "sys/devices/system/cpu/cpu1/thermal_throttle/core_throttle_count", "3\n")
    assert mon2.stop().throttled is True
    assert any("thermal_throttle" in n for n in mon2.report.notes)


def test_idle_cpu_is_not_judged_for_throttling(tmp_path: Path) -> None:
    _cpu_tree(tmp_path, 1_000_000, 3_000_000)
    idle = _busy_stat_reader(busy=False)
    with PowerMonitor(tmp_path, interval_s=0.02, probe_gpus=False, read_text=idle) as mon:
        time.sleep(0.05)
    assert mon.report.throttled is None  # no busy CPU, no throttle counters: unknown


def _fake_pynvml(with_energy: bool) -> types.ModuleType:
    m = types.ModuleType("pynvml")
    state = {"mj": 0, "shutdown": False}

    def energy(h: int) -> int:
        if not with_energy:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        state["mj"] += 5000  # 5 J per read
        return state["mj"]

    m.nvmlInit = lambda: None
    m.nvmlShutdown = lambda: state.__setitem__("shutdown", True)
    m.nvmlDeviceGetCount = lambda: 2
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetTotalEnergyConsumption = energy
    m.nvmlDeviceGetPowerUsage = lambda h: 150_000  # 150 W each
    m.state = state
    return m


def test_nvml_energy_counter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = _fake_pynvml(with_energy=True)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    g = NvmlPower(indices=[0])
    assert g.available() and g.energy_supported
    assert g.power_w() == 150.0
    with PowerMonitor(tmp_path, gpus=[NvmlPower(indices=[0])], interval_s=0.02) as mon:
        time.sleep(0.03)
    rep = mon.report
    assert rep.available and rep.cpu_energy_j is None
    assert rep.gpu_energy_j == pytest.approx(5.0)  # one counter read before, one after
    assert any(n.startswith("CPU:") for n in rep.notes)
    assert fake.state["shutdown"]


def test_nvml_power_sampling_when_no_energy_counter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(with_energy=False))
    g = NvmlPower()
    assert g.available() and not g.energy_supported and g.energy_j() is None
    assert g.power_w() == 300.0
    with PowerMonitor(tmp_path, gpus=[g], interval_s=0.02) as mon:
        time.sleep(0.1)
    rep = mon.report
    assert rep.gpu_avg_w == pytest.approx(300.0, rel=0.35)  # integrated from samples
    assert rep.gpu_energy_j > 0


def test_vendor_libraries_missing_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    assert "pynvml not installed" in NvmlPower().why_not()
    assert "amdsmi not installed" in AmdSmiPower().why_not()
    broken = types.SimpleNamespace(
        nvmlInit=lambda: (_ for _ in ()).throw(RuntimeError("no driver"))
    )
    assert "no driver" in NvmlPower(module=broken).why_not()


def test_amdsmi_power() -> None:
    fake = types.SimpleNamespace(
        amdsmi_init=lambda: None,
        amdsmi_shut_down=lambda: None,
        amdsmi_get_processor_handles=lambda: ["gpu0", "gpu1"],
        amdsmi_get_power_info=lambda h: {
            "socket_power": "N/A",
            "current_socket_power": 0xFFFF_FFFF,
            "average_socket_power": 80 if h == "gpu0" else 70,
        },
    )
    g = AmdSmiPower(module=fake)
    assert g.available() and g.power_w() == 150.0
    assert AmdSmiPower(indices=[1], module=fake).power_w() == 70.0
    none = types.SimpleNamespace(**{**vars(fake), "amdsmi_get_power_info": lambda h: {}})
    assert "no socket power" in AmdSmiPower(module=none).why_not()


def test_power_monitor_on_this_machine() -> None:
    """Real sysfs: RAPL may or may not be there; the report must be consistent either way."""
    with PowerMonitor() as mon:
        t_end = time.perf_counter() + 0.3
        while time.perf_counter() < t_end:
            sum(i * i for i in range(1000))
    rep = mon.report
    assert isinstance(rep, EnergyReport)
    assert rep.duration_s > 0 and rep.samples >= 2
    if rep.available:
        assert rep.why_not is None
        assert (rep.cpu_energy_j or 0) >= 0 and (rep.gpu_energy_j or 0) >= 0
    else:
        assert rep.why_not and rep.cpu_energy_j is None and rep.gpu_energy_j is None
    if rep.clock_mhz_mean is not None:
        assert rep.clock_mhz_min <= rep.clock_mhz_mean <= rep.clock_mhz_max
    d = rep.per_inference(100).to_dict()
    assert json.loads(json.dumps(d))["available"] == rep.available
