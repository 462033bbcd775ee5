"""An estimate of a CPU's peak floating-point rate, to put achieved GFLOP/s in context.

    peak = cores used x clock x FLOPs per cycle per core

FLOPs per cycle per core (float32) come from the widest SIMD the CPU reports and
the number of FMA units typical for that class of core: one fused multiply-add
is 2 FLOPs per lane. It is an estimate: turbo under all-core load, AVX-512
frequency offsets, and one-FMA-unit parts (some Xeon Silver/Bronze, many
laptops) make the real peak lower or higher. Results say so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from aialliance_cli.hardware.inventory import CpuInfo


@dataclass(frozen=True)
class PeakEstimate:
    gflops: float | None
    cores: int | None
    clock_mhz: float | None
    flops_per_cycle: int | None
    simd: str
    formula: str
    note: str = "an estimate from cores, SIMD width, FMA units and clock"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def flops_per_cycle(cpu: CpuInfo) -> tuple[int, str]:
    """(float32 FLOPs per cycle per core, the SIMD assumption behind it)."""
    f = set(cpu.features)
    if cpu.vendor == "arm" or cpu.architecture in ("aarch64", "arm64"):
        if "sve" in f:
            return 32, "SVE 256-bit, 2 FMA pipes (Neoverse V1-class)"
        return 16, "NEON 128-bit, 2 FMA pipes"
    if "avx512f" in f:
        return 64, "AVX-512, 2 FMA units x 16 float32 lanes x 2"
    if "avx2" in f and "fma" in f:
        return 32, "AVX2, 2 FMA units x 8 float32 lanes x 2"
    if "avx" in f:
        return 16, "AVX without FMA: 8-lane add + 8-lane multiply"
    if "sse4.2" in f:
        return 8, "SSE: 4-lane add + 4-lane multiply"
    return 2, "scalar"


def estimate_cpu_peak(
    cpu: CpuInfo, threads: int | None = None, clock_mhz: float | None = None
) -> PeakEstimate:
    """Peak float32 GFLOP/s of the cores a session with ``threads`` intra-op threads uses."""
    per_cycle, simd = flops_per_cycle(cpu)
    # SMT siblings share FMA units: count physical cores.
    cores = cpu.physical_cores or cpu.logical_cores
    if threads and cores:
        cores = min(cores, threads)
    clock = clock_mhz or cpu.max_mhz or cpu.base_mhz
    if not cores or not clock:
        return PeakEstimate(
            None, cores, clock, per_cycle, simd, "unknown: the OS reports no core count or clock"
        )
    gflops = cores * clock * 1e6 * per_cycle / 1e9
    return PeakEstimate(
        round(gflops, 1),
        cores,
        clock,
        per_cycle,
        simd,
        f"{cores} cores x {clock / 1000:.2f} GHz x {per_cycle} FLOP/cycle",
    )
