"""`aia detect`: the machine's inventory and the EP plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aialliance_cli.cli.output import handles_errors

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@handles_errors
def detect(
    json_: JsonOpt = False,
    root: Annotated[
        Path, typer.Option(help="Read the machine from this root (a fake sysfs tree).")
    ] = Path("/"),
    no_vendor_libs: Annotated[
        bool, typer.Option("--no-vendor-libs", help="Skip NVML, amdsmi and OpenVINO enrichment.")
    ] = False,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="Probe devices, vendor libraries and ONNX Runtime again instead of reusing "
            "the answers of a call in the last 5 minutes.",
        ),
    ] = False,
    diff: Annotated[
        Path | None,
        typer.Option(
            "--diff",
            metavar="OTHER.json",
            help="Compare this machine with another's saved `aia detect --json`: every "
            "fact side by side, differences marked, with what they mean.",
        ),
    ] = None,
) -> None:
    """Show this machine's CPU, memory, GPUs/NPUs, ONNX Runtime, and the EP plan."""
    from aialliance_cli.hardware import detect as detect_inventory
    from aialliance_cli.providers.planner import plan, plan_for_machine

    if not root.is_dir():
        from aialliance_cli.errors import BadInputError

        raise BadInputError(f"--root {root} is not a directory (a root such as / or a fake tree)")
    other = None
    if diff is not None:
        from aialliance_cli.hardware.diff import load_detect

        other = load_detect(diff)  # a bad file: exit 2 before probing
    inventory = detect_inventory(
        root, vendor_libs=not no_vendor_libs, disk_cache=True, refresh=refresh
    )
    if str(root) == "/":
        the_plan = plan_for_machine(inventory=inventory, disk_cache=True, refresh=refresh)
    else:  # a fake tree: plan against the EPs it was recorded with
        the_plan = plan(inventory, inventory.software.available_providers)
    if other is not None:
        from aialliance_cli.hardware.diff import diff_machines

        here = {"inventory": inventory.to_dict(), "plan": the_plan.to_dict()}
        other_name = diff.name.split(".")[0] if diff is not None else "other"
        result = diff_machines([("this machine", here), (other_name, other)])
        if json_:
            from aialliance_cli.cli.output import print_json

            print_json(result.to_dict())
        else:
            render_diff(result)
        return
    from aialliance_cli.tune.records import records_for_machine

    tuned = records_for_machine(inventory) if str(root) == "/" else []
    elsewhere = env_eps() if str(root) == "/" else {}
    if json_:
        from aialliance_cli.cli.output import print_json

        print_json(
            {
                "schema": "aia.detect/1",
                "inventory": inventory.to_dict(),
                "plan": the_plan.to_dict(),
                "tuned": [{**r.to_dict(), "key": r.key} for r in tuned],
                # EPs that registered environments (aia env) offer beyond this build.
                "environments": {ep: names for ep, names in elsewhere.items()},
            }
        )
        return
    render_inventory(inventory)
    render_plan(the_plan, elsewhere)
    if tuned:
        from aialliance_cli.cli.output import show

        show("tuned records for this machine (aia tune --show):")
        for r in tuned:
            show(f"  {r.target} ({r.objective}): {r.summary_line()}")


def render_inventory(inv: Any) -> None:
    from aialliance_cli.cli.output import fmt_bytes, show, table

    cpu = inv.cpu
    caches = ", ".join(
        f"L{c.level}{'' if c.type == 'Unified' else c.type[0].lower()} {fmt_bytes(c.size_bytes)}"
        for c in cpu.caches
    )
    clock = " / ".join(
        f"{label} {v / 1000:.2f} GHz"
        for label, v in (("base", cpu.base_mhz), ("max", cpu.max_mhz))
        if v
    )
    mhz = getattr(cpu, "cpuinfo_mhz", None)
    if not clock and mhz:  # no cpufreq (a VM): what /proc/cpuinfo says, named as such
        clock = f"{mhz / 1000:.2f} GHz now (/proc/cpuinfo; no cpufreq in sysfs)"
    rows = [
        ("CPU", f"{cpu.model_name} ({cpu.vendor}, {cpu.architecture})"),
        (
            "Cores",
            f"{_n(cpu.physical_cores)} physical, {_n(cpu.logical_cores)} logical, "
            f"{_n(cpu.sockets)} socket(s), {_n(cpu.numa_nodes)} NUMA node(s)",
        ),
        ("Clock", clock or "not reported"),
        ("Caches", caches or "not reported"),
        ("ISA", " ".join(cpu.features) or "none of note"),
        (
            "Memory",
            f"{fmt_bytes(inv.memory.total_bytes)} total, "
            f"{fmt_bytes(inv.memory.available_bytes)} available",
        ),
    ]
    for i, acc in enumerate(inv.accelerators):
        bits = [acc.vendor, f"driver {acc.driver or 'none'}"]
        if acc.memory_bytes:
            bits.append(fmt_bytes(acc.memory_bytes))
        if acc.architecture:
            bits.append(acc.architecture)
        if acc.pci_address:
            bits.append(acc.pci_address)
        if acc.device_nodes:
            bits.append(" ".join(acc.device_nodes))
        rows.append((f"{acc.kind.upper()} {i}", f"{acc.name} ({', '.join(bits)})"))
    if not inv.accelerators:
        rows.append(("GPU/NPU", "none found"))
    sw = inv.software
    dists = ", ".join(f"{d.name} {d.version}" for d in sw.ort_distributions) or "none"
    rows += [
        ("OS", f"{sw.os} {sw.os_release}"),
        ("Python", sw.python),
        ("ONNX Runtime", f"{sw.ort_version or 'not importable'} ({dists})"),
        ("EPs in build", ", ".join(sw.available_providers) or "none"),
    ]
    show(table(f"Machine: {inv.hostname or ''}", ["", ""], rows))
    for note in inv.notes:
        from aialliance_cli.cli.output import info

        info(f"{note.probe}: {note.message}")


def _n(value: Any) -> str:
    return "n/a" if value is None else str(value)


def env_eps() -> dict[str, list[str]]:
    """EP -> the registered environments (aia env) whose build offers it; {} when the
    registry cannot be read (detect reports the machine; `aia env list` reports that)."""
    try:
        from aialliance_cli.envs.registry import list_envs

        envs = list_envs()
    except Exception:
        return {}
    out: dict[str, list[str]] = {}
    for env in envs:
        if env.problem():
            continue
        for ep in env.providers:
            out.setdefault(ep, []).append(env.name)
    return out


def _in_envs(ep: str, elsewhere: dict[str, list[str]]) -> str | None:
    names = elsewhere.get(ep)
    if not names:
        return None
    from aialliance_cli.providers.catalogue import short_name

    where = ", ".join(f"'{n}'" for n in names)
    return (
        f"available in environment {where} (aia env): --ep {short_name(ep)} runs there in a worker"
    )


def render_plan(the_plan: Any, elsewhere: dict[str, list[str]] | None = None) -> None:
    from aialliance_cli.cli.output import show, table, warn

    elsewhere = elsewhere or {}
    rows = [(str(i + 1), c.ep, c.device, c.reason) for i, c in enumerate(the_plan.choices)]
    show(table("Execution-provider plan (first is used)", ["#", "EP", "device", "why"], rows))
    if the_plan.passed_over:
        passed = []
        for p in the_plan.passed_over:
            there = _in_envs(p.ep, elsewhere) if "not in this build" in p.reason else None
            passed.append((p.ep, f"{there}; here: {p.reason}" if there else p.reason))
        show(table("Passed over", ["EP", "why"], passed))
    if the_plan.unlocks:
        unlocks = []
        for u in the_plan.unlocks:
            there = next(
                (t for ep in elsewhere if ep in u.reason and (t := _in_envs(ep, elsewhere))),
                None,
            )
            how = u.pip or u.url or ""
            unlocks.append(
                (u.device, u.reason, f"{there}; or here: {how}" if there and how else how)
            )
        show(
            table(
                "Hardware present but not usable yet",
                ["device", "why", "to unlock"],
                unlocks,
            )
        )
    for w in the_plan.warnings:
        warn(w)


def render_diff(result: Any, *, only_differences: bool = False) -> None:
    """Facts side by side (differing rows marked with *), then one line per note."""
    from aialliance_cli.cli.output import show, table, warn

    facts = result.differences if only_differences else result.facts
    rows = [("*" if f.differs else "", f.fact, *f.values) for f in facts]
    n = len(result.differences)
    caption = f"* differs ({n} of {len(result.facts)} facts)" if n else "no differences"
    show(table("Machines side by side", ["", "fact", *result.names], rows, caption=caption))
    for note in result.notes:
        warn(note)
