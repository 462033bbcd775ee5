"""Energy, power, clocks and temperatures during a run.

Sources, each optional and each able to say why it is missing:

- CPU package energy from RAPL through the powercap sysfs tree
  (``/sys/class/powercap/intel-rapl:N`` and subdomains ``intel-rapl:N:M``;
  AMD Zen exposes the same names on recent kernels), or the ``amd_energy``
  hwmon driver where powercap is absent;
- NVIDIA GPU energy or power through pynvml (nvidia-ml-py);
- AMD GPU power through amdsmi;
- CPU clocks (cpufreq or /proc/cpuinfo), temperatures (hwmon, thermal zones)
  and throttling signs.

Every reader takes a root path so that tests hand it a fake tree, and an
injectable ``read_text`` so that tests can simulate permission errors (they
run as root, where chmod 000 does not stop a read).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ReadText = Callable[[Path], str]

_CPU_TEMP_HWMON = ("k10temp", "coretemp", "zenpower", "cpu_thermal", "soc_thermal")
_BUSY_FRACTION = 0.5  # a CPU more than half busy counts as "busy" for throttling
_THROTTLE_CLOCK_FRACTION = 0.9


def _default_read_text(path: Path) -> str:
    return path.read_text()


def _read_int(read_text: ReadText, path: Path) -> int | None:
    try:
        return int(read_text(path).strip())
    except (OSError, ValueError):
        return None


def _read_str(read_text: ReadText, path: Path) -> str | None:
    try:
        return read_text(path).strip()
    except OSError:
        return None


def _cpu_index(path: Path) -> int:
    for part in reversed(path.parts):
        m = re.fullmatch(r"cpu(\d+)", part)
        if m:
            return int(m.group(1))
    return -1


# ---------------------------------------------------------------- RAPL


@dataclass(frozen=True)
class RaplDomain:
    """One energy counter: a package (``intel-rapl:0``) or a subdomain (``intel-rapl:0:1``)."""

    key: str  # intel-rapl:0, intel-rapl:0:1, amd_energy:hwmon3:energy17
    name: str  # package-0, core, dram, Esocket0
    energy_path: Path
    max_energy_range_uj: int | None  # counter wraps to 0 after this many uJ
    is_package: bool


class RaplReader:
    """CPU energy counters from powercap RAPL (or the amd_energy hwmon driver)."""

    def __init__(self, root: str | Path = "/", *, read_text: ReadText | None = None) -> None:
        self.root = Path(root)
        self._read = read_text or _default_read_text
        self.domains: tuple[RaplDomain, ...] = ()
        self.source: str | None = None
        self._why_not: str | None = None
        self._discover()

    def _discover(self) -> None:
        powercap = self.root / "sys/class/powercap"
        dirs = sorted(
            (p for p in powercap.glob("intel-rapl:*") if p.is_dir() or p.is_symlink()),
            key=lambda p: [int(x) for x in p.name.split(":")[1:] if x.isdigit()],
        )
        domains = []
        for d in dirs:
            name = _read_str(self._read, d / "name") or d.name
            domains.append(
                RaplDomain(
                    key=d.name,
                    name=name,
                    energy_path=d / "energy_uj",
                    max_energy_range_uj=_read_int(self._read, d / "max_energy_range_uj"),
                    is_package=d.name.count(":") == 1,
                )
            )
        if domains:
            self.source = "powercap"
        else:
            domains = self._discover_amd_energy()
            if domains:
                self.source = "amd_energy"
        self.domains = tuple(domains)
        if not self.domains:
            self._why_not = (
                f"no {powercap}/intel-rapl:* (kernel without RAPL powercap, or a VM) "
                "and no amd_energy hwmon"
            )
            return
        packages = [d for d in self.domains if d.is_package]
        if not packages:
            self._why_not = "RAPL found no package domain (only subdomains)"
            return
        for d in packages:
            try:
                int(self._read(d.energy_path).strip())
            except PermissionError:
                self._why_not = (
                    f"{d.energy_path} not readable: permission denied (root only since "
                    "kernel 5.10; run as root or grant read access to energy_uj)"
                )
                return
            except (OSError, ValueError) as exc:
                self._why_not = f"{d.energy_path} not readable: {exc}"
                return

    def _discover_amd_energy(self) -> list[RaplDomain]:
        out = []
        for hw in sorted((self.root / "sys/class/hwmon").glob("hwmon*")):
            if _read_str(self._read, hw / "name") != "amd_energy":
                continue
            for inp in sorted(hw.glob("energy*_input")):
                label = _read_str(self._read, inp.with_name(inp.name.replace("_input", "_label")))
                label = label or inp.name
                out.append(
                    RaplDomain(
                        key=f"amd_energy:{hw.name}:{inp.name.split('_')[0]}",
                        name=label,
                        energy_path=inp,
                        max_energy_range_uj=None,  # 64-bit accumulators in the driver
                        is_package=label.lower().startswith("esocket"),
                    )
                )
        return out

    def available(self) -> bool:
        return self._why_not is None

    def why_not(self) -> str | None:
        return self._why_not

    def read_uj(self) -> dict[str, int]:
        """Current counter of every readable domain, in microjoules."""
        out: dict[str, int] = {}
        for d in self.domains:
            v = _read_int(self._read, d.energy_path)
            if v is not None:
                out[d.key] = v
        return out

    def delta_uj(self, before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        """Energy used per domain between two reads, undoing one counter wraparound."""
        ranges = {d.key: d.max_energy_range_uj for d in self.domains}
        out = {}
        for key, a in after.items():
            b = before.get(key)
            if b is None:
                continue
            diff = a - b
            if diff < 0:
                rng = ranges.get(key)
                if not rng:
                    continue  # a counter went back without a known range: skip, never guess
                diff += rng
            out[key] = diff
        return out

    def package_keys(self) -> list[str]:
        return [d.key for d in self.domains if d.is_package]


# ---------------------------------------------------------------- GPUs


class NvmlPower:
    """NVIDIA GPU energy (preferred) or power through pynvml; optional."""

    def __init__(self, indices: Sequence[int] | None = None, *, module: Any = None) -> None:
        self._nvml = module
        self._handles: list[Any] = []
        self._why_not: str | None = None
        self.energy_supported = False
        self._init(indices)

    def _init(self, indices: Sequence[int] | None) -> None:
        if self._nvml is None:
            try:
                import pynvml  # type: ignore[import-not-found]
            except ImportError:
                self._why_not = "pynvml not installed (pip install nvidia-ml-py)"
                return
            self._nvml = pynvml
        try:
            self._nvml.nvmlInit()
            count = int(self._nvml.nvmlDeviceGetCount())
            wanted = list(range(count)) if indices is None else [i for i in indices if i < count]
            self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in wanted]
        except Exception as exc:  # NVMLError has many subclasses; any means "not usable"
            self._why_not = f"NVML not usable: {exc}"
            self._handles = []
            return
        if not self._handles:
            self._why_not = "NVML found no NVIDIA GPU"
            return
        try:  # Volta and newer keep a total-energy counter (mJ)
            for h in self._handles:
                self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)
            self.energy_supported = True
        except Exception:
            self.energy_supported = False

    def available(self) -> bool:
        return self._why_not is None

    def why_not(self) -> str | None:
        return self._why_not

    def energy_j(self) -> float | None:
        """Sum of the GPUs' total-energy counters in joules, where supported."""
        if not self.available() or not self.energy_supported:
            return None
        try:
            return (
                sum(float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles)
                / 1000.0
            )
        except Exception:
            return None

    def power_w(self) -> float | None:
        """Current draw of the GPUs together, in watts."""
        if not self.available():
            return None
        try:
            return sum(float(self._nvml.nvmlDeviceGetPowerUsage(h)) for h in self._handles) / 1000.0
        except Exception:
            return None

    def close(self) -> None:
        if self._handles:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._handles = []


class AmdSmiPower:
    """AMD GPU power through amdsmi (socket power in W); optional."""

    _KEYS = ("socket_power", "current_socket_power", "average_socket_power")

    def __init__(self, indices: Sequence[int] | None = None, *, module: Any = None) -> None:
        self._amdsmi = module
        self._handles: list[Any] = []
        self._why_not: str | None = None
        self.energy_supported = False
        self._init(indices)

    def _init(self, indices: Sequence[int] | None) -> None:
        if self._amdsmi is None:
            try:
                import amdsmi  # type: ignore[import-not-found]
            except ImportError:
                self._why_not = "amdsmi not installed (it ships with ROCm)"
                return
            self._amdsmi = amdsmi
        try:
            self._amdsmi.amdsmi_init()
            handles = list(self._amdsmi.amdsmi_get_processor_handles())
        except Exception as exc:
            self._why_not = f"amdsmi not usable: {exc}"
            return
        self._handles = (
            handles if indices is None else [h for i, h in enumerate(handles) if i in indices]
        )
        if not self._handles:
            self._why_not = "amdsmi found no AMD GPU"
        elif self.power_w() is None:
            self._why_not = "amdsmi reports no socket power for these GPUs"

    def available(self) -> bool:
        return self._why_not is None

    def why_not(self) -> str | None:
        return self._why_not

    def energy_j(self) -> float | None:
        return None  # power is sampled and integrated instead

    def power_w(self) -> float | None:
        if not self._handles:
            return None
        total = 0.0
        try:
            for h in self._handles:
                info = self._amdsmi.amdsmi_get_power_info(h)
                value = None
                for key in self._KEYS:
                    v = info.get(key) if isinstance(info, dict) else getattr(info, key, None)
                    # Unsupported fields read "N/A" or UINT32_MAX.
                    if isinstance(v, (int, float)) and 0 < v < 0xFFFF_FFFF:
                        value = float(v)
                        break
                if value is None:
                    return None
                total += value
        except Exception:
            return None
        return total

    def close(self) -> None:
        if self._handles:
            with contextlib.suppress(Exception):
                self._amdsmi.amdsmi_shut_down()
            self._handles = []


# ---------------------------------------------------------------- clocks, temps, load


class CpuSensors:
    """CPU clocks, temperatures, per-CPU load and throttle counters under a root."""

    def __init__(self, root: str | Path = "/", *, read_text: ReadText | None = None) -> None:
        self.root = Path(root)
        self._read = read_text or _default_read_text
        cpu_dir = self.root / "sys/devices/system/cpu"
        self._cur_freq = sorted(cpu_dir.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"), key=_cpu_index)
        # Reference clock for throttling: base_frequency (intel_pstate) when
        # known, since all-core load legitimately runs below the boost maximum.
        self._ref_khz: dict[int, int] = {}
        for f in self._cur_freq:
            idx = _cpu_index(f)
            ref = _read_int(self._read, f.with_name("base_frequency"))
            ref = ref or _read_int(self._read, f.with_name("cpuinfo_max_freq"))
            if ref:
                self._ref_khz[idx] = ref
        self._throttle_files = sorted(cpu_dir.glob("cpu[0-9]*/thermal_throttle/*_throttle_count"))
        self._temp_files = self._find_temp_files()

    def _find_temp_files(self) -> list[Path]:
        files: list[Path] = []
        for hw in sorted((self.root / "sys/class/hwmon").glob("hwmon*")):
            if _read_str(self._read, hw / "name") in _CPU_TEMP_HWMON:
                files.extend(sorted(hw.glob("temp*_input")))
        if not files:  # thermal zones are coarser (acpitz can be a fixed value)
            files = sorted((self.root / "sys/class/thermal").glob("thermal_zone*/temp"))
        return files

    def clocks_mhz(self) -> dict[int, float]:
        """Current clock of each CPU in MHz (cpufreq, else /proc/cpuinfo)."""
        out: dict[int, float] = {}
        for f in self._cur_freq:
            v = _read_int(self._read, f)
            if v:
                out[_cpu_index(f)] = v / 1000.0
        if out:
            return out
        text = _read_str(self._read, self.root / "proc/cpuinfo") or ""
        idx = -1
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "processor":
                try:
                    idx = int(value.strip())
                except ValueError:
                    idx += 1
            elif key == "cpu MHz":
                with contextlib.suppress(ValueError):
                    out[idx] = float(value.strip())
        return out

    def reference_mhz(self) -> dict[int, float]:
        return {k: v / 1000.0 for k, v in self._ref_khz.items()}

    def temperature_c(self) -> float | None:
        values = [_read_int(self._read, f) for f in self._temp_files]
        temps = [v / 1000.0 for v in values if v is not None and v > 0]
        return max(temps) if temps else None

    def throttle_count(self) -> int | None:
        if not self._throttle_files:
            return None
        values = [_read_int(self._read, f) for f in self._throttle_files]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    def cpu_times(self) -> dict[int, tuple[int, int]]:
        """(busy, total) jiffies of each CPU from /proc/stat."""
        out: dict[int, tuple[int, int]] = {}
        text = _read_str(self._read, self.root / "proc/stat") or ""
        for line in text.splitlines():
            m = re.match(r"cpu(\d+)\s+(.*)", line)
            if not m:
                continue
            nums = [int(x) for x in m.group(2).split()]
            total = sum(nums[:8])  # guest time is already inside user time
            idle = nums[3] + (nums[4] if len(nums) > 4 else 0)
            out[int(m.group(1))] = (total - idle, total)
        return out


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class EnergyReport:
    """What the sensors saw during a run; None where a source was missing."""

    available: bool  # True when CPU or GPU energy was measured
    why_not: str | None  # why no energy was measured (None when available)
    cpu_energy_j: float | None = None
    cpu_avg_w: float | None = None
    gpu_energy_j: float | None = None
    gpu_avg_w: float | None = None
    joules_per_inference: float | None = None
    clock_mhz_min: float | None = None
    clock_mhz_mean: float | None = None
    clock_mhz_max: float | None = None
    temp_c_max: float | None = None
    throttled: bool | None = None
    duration_s: float = 0.0
    samples: int = 0
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def per_inference(self, n: int) -> EnergyReport:
        """A copy with ``joules_per_inference`` = (CPU + GPU energy) / n."""
        if n <= 0 or not self.available:
            return replace(self, joules_per_inference=None)
        total = (self.cpu_energy_j or 0.0) + (self.gpu_energy_j or 0.0)
        return replace(self, joules_per_inference=total / n)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"] = list(self.sources)
        d["notes"] = list(self.notes)
        return d


@dataclass
class _Accumulator:
    rapl_uj: dict[str, int] = field(default_factory=dict)
    gpu_power: dict[int, list[tuple[float, float]]] = field(default_factory=dict)  # (t, W)
    clocks: list[float] = field(default_factory=list)
    temps: list[float] = field(default_factory=list)
    throttled_by_clock: bool = False
    clock_checked: bool = False
    samples: int = 0
    errors: list[str] = field(default_factory=list)


class PowerMonitor:
    """Context manager sampling energy, power, clocks and temperatures in a thread.

    >>> with PowerMonitor() as mon:
    ...     run_the_benchmark()
    >>> report = mon.report.per_inference(n_inferences)
    """

    def __init__(
        self,
        root: str | Path = "/",
        *,
        interval_s: float = 0.1,
        gpus: Sequence[NvmlPower | AmdSmiPower] | None = None,
        probe_gpus: bool = True,
        read_text: ReadText | None = None,
    ) -> None:
        self.root = Path(root)
        self.interval_s = interval_s
        self._read = read_text
        self._gpus_given = gpus
        self._probe_gpus = probe_gpus and gpus is None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._acc = _Accumulator()
        self.report: EnergyReport | None = None

    # -- lifecycle

    def start(self) -> PowerMonitor:
        self.rapl = RaplReader(self.root, read_text=self._read)
        self.sensors = CpuSensors(self.root, read_text=self._read)
        gpus: list[NvmlPower | AmdSmiPower] = list(self._gpus_given or [])
        self._gpu_why: list[str] = []
        if self._probe_gpus:
            for cls in (NvmlPower, AmdSmiPower):
                src = cls()
                if src.available():
                    gpus.append(src)
                else:
                    src.close()
        self.gpus = [g for g in gpus if g.available()]
        self._gpu_why = [g.why_not() or "" for g in gpus if not g.available()]
        self._rapl_prev = self.rapl.read_uj() if self.rapl.available() else {}
        self._gpu_energy0 = [g.energy_j() for g in self.gpus]
        self._cpu_times_prev = self.sensors.cpu_times()
        self._throttle0 = self.sensors.throttle_count()
        self._t0 = time.perf_counter()
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="aia-power-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> EnergyReport:
        if self.report is not None:
            return self.report
        if self._thread is None:
            raise RuntimeError("PowerMonitor.stop() called before start()")
        self._stop.set()
        self._thread.join()
        self._sample()
        duration = time.perf_counter() - self._t0
        gpu_energy1 = [g.energy_j() for g in self.gpus]
        throttle1 = self.sensors.throttle_count()
        for g in self.gpus:
            g.close()
        self.report = self._build(duration, gpu_energy1, throttle1)
        return self.report

    def __enter__(self) -> PowerMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- sampling

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        acc = self._acc
        try:
            now = time.perf_counter()
            if self._rapl_prev:
                cur = self.rapl.read_uj()
                for key, d in self.rapl.delta_uj(self._rapl_prev, cur).items():
                    acc.rapl_uj[key] = acc.rapl_uj.get(key, 0) + d
                self._rapl_prev = {**self._rapl_prev, **cur}
            for i, g in enumerate(self.gpus):
                if self._gpu_energy0[i] is None:
                    w = g.power_w()
                    if w is not None:
                        acc.gpu_power.setdefault(i, []).append((now, w))
            clocks = self.sensors.clocks_mhz()
            times = self.sensors.cpu_times()
            busy = self._busy_cpus(self._cpu_times_prev, times)
            self._cpu_times_prev = times
            if clocks:
                chosen = [clocks[c] for c in busy if c in clocks] or list(clocks.values())
                acc.clocks.append(sum(chosen) / len(chosen))
                ref = self.sensors.reference_mhz()
                for c in busy:
                    if c in clocks and c in ref:
                        acc.clock_checked = True
                        if clocks[c] < _THROTTLE_CLOCK_FRACTION * ref[c]:
                            acc.throttled_by_clock = True
            t = self.sensors.temperature_c()
            if t is not None:
                acc.temps.append(t)
            acc.samples += 1
        except Exception as exc:  # a sensor must never break the benchmark
            if len(acc.errors) < 3:
                acc.errors.append(f"sampling error: {exc}")

    @staticmethod
    def _busy_cpus(
        before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
    ) -> list[int]:
        out = []
        for cpu, (busy1, total1) in after.items():
            if cpu not in before:
                continue
            busy0, total0 = before[cpu]
            if total1 > total0 and (busy1 - busy0) / (total1 - total0) > _BUSY_FRACTION:
                out.append(cpu)
        return out

    def _build(
        self, duration: float, gpu_energy1: list[float | None], throttle1: int | None
    ) -> EnergyReport:
        acc = self._acc
        notes: list[str] = list(acc.errors)
        sources: list[str] = []
        why: list[str] = []

        cpu_j = None
        if self.rapl.available():
            pkg = self.rapl.package_keys()
            cpu_j = sum(acc.rapl_uj.get(k, 0) for k in pkg) / 1e6
            sources.append(f"rapl:{self.rapl.source}")
            notes.append(
                "CPU energy is the RAPL package counter: the whole socket, "
                "other processes included."
            )
        else:
            why.append(f"CPU: {self.rapl.why_not()}")

        gpu_j = None
        if self.gpus:
            total = 0.0
            for e0, e1 in zip(self._gpu_energy0, gpu_energy1, strict=True):
                if e0 is not None and e1 is not None:
                    total += max(0.0, e1 - e0)
            for power in acc.gpu_power.values():  # GPUs without an energy counter
                if len(power) == 1:
                    total += power[0][1] * duration
                else:  # trapezoid rule over the samples
                    total += sum(
                        (t1 - t0) * (w0 + w1) / 2
                        for (t0, w0), (t1, w1) in zip(power, power[1:], strict=False)
                    )
            if acc.gpu_power:
                notes.append("GPU energy integrated from power samples (coarse).")
            gpu_j = total
            sources.extend(type(g).__name__ for g in self.gpus)
        elif self._gpu_why:
            why.extend(f"GPU: {w}" for w in self._gpu_why)

        throttled: bool | None = None
        if acc.clock_checked or throttle1 is not None:
            throttled = acc.throttled_by_clock
            if (
                throttle1 is not None
                and self._throttle0 is not None
                and throttle1 > self._throttle0
            ):
                throttled = True
                notes.append(f"thermal_throttle counters rose by {throttle1 - self._throttle0}.")
            elif acc.throttled_by_clock:
                notes.append(
                    f"A busy CPU ran below {_THROTTLE_CLOCK_FRACTION:.0%} of its base/max clock."
                )

        available = cpu_j is not None or gpu_j is not None
        if available and why:
            notes.extend(why)
        clocks = acc.clocks
        return EnergyReport(
            available=available,
            why_not=None if available else "; ".join(why) or "no energy source",
            cpu_energy_j=cpu_j,
            cpu_avg_w=cpu_j / duration if cpu_j is not None and duration > 0 else None,
            gpu_energy_j=gpu_j,
            gpu_avg_w=gpu_j / duration if gpu_j is not None and duration > 0 else None,
            clock_mhz_min=min(clocks) if clocks else None,
            clock_mhz_mean=sum(clocks) / len(clocks) if clocks else None,
            clock_mhz_max=max(clocks) if clocks else None,
            temp_c_max=max(acc.temps) if acc.temps else None,
            throttled=throttled,
            duration_s=duration,
            samples=acc.samples,
            sources=tuple(sources),
            notes=tuple(notes),
        )
