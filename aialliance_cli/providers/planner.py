"""The EP plan: which execution providers to use on this machine, in what order, and why.

``plan()`` is a pure function of (inventory, available EPs, preferences): it
joins the hardware found with the EPs the installed ONNX Runtime offers, using
the table in catalogue.py. It never touches the machine; ``plan_for_machine()``
does the looking and then calls it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aialliance_cli.hardware.inventory import Accelerator, CpuInfo, Inventory
from aialliance_cli.providers.catalogue import (
    CATALOGUE,
    CPU_EP,
    EpSpec,
    Target,
    find_spec,
    resolve_ep_name,
    short_name,
)

_KIND_ORDER = {"gpu": 0, "npu": 1, "cpu": 2}
_VENDOR_LABEL = {
    "nvidia": "NVIDIA",
    "amd": "AMD",
    "intel": "Intel",
    "qualcomm": "Qualcomm",
    "apple": "Apple",
    "other": "other",
}
_OS_LABEL = {"Windows": "Windows", "Linux": "Linux", "Darwin": "macOS"}


@dataclass(frozen=True)
class Preferences:
    """What a profile or the command line asks of the plan.

    ``prefer`` puts these EPs first, in this order (canonical or short names;
    naming ``cpu`` puts the CPU EP first too). ``options`` adds to or overrides
    the provider options per EP. ``exclude`` drops EPs (never the CPU EP).
    ``devices`` pins one EP to a kind of device ("intel-gpu", "amd-cpu"): other
    EPs are not planned on it (the CPU EP stays as the last resort).
    """

    prefer: tuple[str, ...] = ()
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    # "<vendor>-<kind>" -> EP: on such devices use only this EP ({"intel-gpu": "openvino"}).
    devices: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanChoice:
    """One usable (EP, device) pair."""

    ep: str  # canonical name
    short: str
    device: str  # "cpu", "gpu:0 NVIDIA GeForce RTX 4090", "npu:0 Intel AI Boost"
    device_kind: str  # "cpu", "gpu", "npu"
    options: dict[str, Any]
    reason: str
    score: int
    source: str = "build"  # "build": in the installed ORT; "plugin": a registered plugin EP


@dataclass(frozen=True)
class PassedOver:
    ep: str
    reason: str


@dataclass(frozen=True)
class Unlock:
    """Hardware that is present but has no (or only a lesser) EP, and what to install."""

    device: str
    reason: str
    pip: str  # the exact command; "" where pip cannot do it (see url)
    url: str | None = None


@dataclass(frozen=True)
class ProviderPlan:
    choices: tuple[PlanChoice, ...]
    passed_over: tuple[PassedOver, ...] = ()
    unlocks: tuple[Unlock, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def first(self) -> PlanChoice:
        return self.choices[0]

    def find(self, ep: str) -> PlanChoice | None:
        """The first choice of an EP (canonical or short name), or None."""
        if not any(c.ep == ep for c in self.choices):
            if ep.endswith("ExecutionProvider") and find_spec(ep) is None:
                return None  # a canonical name outside the catalogue (a third-party plugin)
            ep = resolve_ep_name(ep)
        return next((c for c in self.choices if c.ep == ep), None)

    @property
    def eps(self) -> tuple[str, ...]:
        """The EPs in plan order, each once."""
        return tuple(dict.fromkeys(c.ep for c in self.choices))

    def to_dict(self) -> dict[str, Any]:
        return {
            "choices": [asdict(c) for c in self.choices],
            "passed_over": [asdict(p) for p in self.passed_over],
            "unlocks": [asdict(u) for u in self.unlocks],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class _Device:
    label: str  # "gpu:0 NVIDIA ..." or "cpu"
    kind: str
    vendor: str
    ordinal: int  # among devices of the same kind and vendor
    kind_index: int  # among devices of the same kind
    several: bool  # more than one device of that kind and vendor
    order: int  # position in the inventory, for stable sorting
    accelerator: Accelerator | None = None


def _devices(inventory: Inventory) -> list[_Device]:
    out: list[_Device] = []
    per_kind: dict[str, int] = {}
    per_vendor: dict[tuple[str, str], int] = {}
    totals: dict[tuple[str, str], int] = {}
    for acc in inventory.accelerators:
        totals[(acc.kind, acc.vendor)] = totals.get((acc.kind, acc.vendor), 0) + 1
    for order, acc in enumerate(inventory.accelerators):
        i = per_kind.get(acc.kind, 0)
        per_kind[acc.kind] = i + 1
        j = per_vendor.get((acc.kind, acc.vendor), 0)
        per_vendor[(acc.kind, acc.vendor)] = j + 1
        out.append(
            _Device(
                label=f"{acc.kind}:{i} {acc.name}",
                kind=acc.kind,
                vendor=acc.vendor,
                ordinal=j,
                kind_index=i,
                several=totals[(acc.kind, acc.vendor)] > 1,
                order=order,
                accelerator=acc,
            )
        )
    return out


def _cpu_target(spec: EpSpec, cpu: CpuInfo) -> Target | None:
    arch = (cpu.architecture or "").lower()
    for t in spec.targets_for("cpu"):
        if t.vendor not in ("any", cpu.vendor):
            continue
        if t.architectures and arch not in t.architectures:
            continue
        if not all(cpu.has(f) for f in t.requires):
            continue
        return t
    return None


def _accel_target(spec: EpSpec, dev: _Device) -> Target | None:
    return next((t for t in spec.targets_for(dev.kind) if t.vendor in ("any", dev.vendor)), None)


def _install_text(spec: EpSpec) -> str:
    if spec.full_builds and spec.name != CPU_EP:
        return f"install {spec.full_builds[0]}"
    if spec.plugin_packages:
        return f"install the plugin {spec.plugin_packages[0]}"
    if spec.install_note:
        return spec.install_note
    return "needs an ONNX Runtime built with it (no pip package)"


def _pip_command(spec: EpSpec, full_installed: Sequence[str]) -> tuple[str, str]:
    """(command, how it installs) for the EP's first package."""
    if spec.full_builds:
        pkg = spec.full_builds[0]
        others = [d for d in full_installed if d != pkg]
        if not others:
            return f"pip install {pkg}", f"{pkg} is a full ONNX Runtime build"
        how = (
            f"{pkg} is a full build that replaces {', '.join(others)} "
            "(they install the same onnxruntime module)"
        )
        return f"pip uninstall -y {' '.join(others)} && pip install {pkg}", how
    if spec.plugin_packages:
        pkg = spec.plugin_packages[0]
        return (
            f"pip install {pkg}",
            f"{pkg} is a plugin EP that installs beside onnxruntime >= 1.23",
        )
    return "", spec.install_note or "no pip package"


def _full_builds_of(ep: str) -> tuple[str, ...]:
    spec = find_spec(ep)
    return spec.full_builds if spec else ()


def _at_least(version: str | None, wanted: tuple[int, int]) -> bool:
    """True when ``version`` ("1.32.0") is at least ``wanted``; unknown counts as new enough."""
    if not version:
        return True
    parts = re.findall(r"\d+", version)[:2]
    if len(parts) < 2:
        return True
    return (int(parts[0]), int(parts[1])) >= wanted


def _suggestion(spec_targets: list[tuple[EpSpec, Target]]) -> tuple[EpSpec, Target] | None:
    """The EP aia advises installing for a device: the best suggested one with an install path."""
    best = None
    for spec, t in spec_targets:
        if not t.suggest:
            continue
        if not (spec.full_builds or spec.plugin_packages or spec.install_url):
            continue
        if best is None or t.score > best[1].score:
            best = (spec, t)
    return best


def plan(
    inventory: Inventory,
    available: Sequence[str],
    preferences: Preferences | None = None,
    *,
    plugin_device_kinds: Mapping[str, Collection[str]] | None = None,
) -> ProviderPlan:
    """Rank the EPs usable on ``inventory`` among ``available``; say why and what to install.

    ``available``: the EP names the ONNX Runtime of the run offers (built in plus
    registered plugin EPs). ``plugin_device_kinds`` maps a plugin EP to the
    device kinds ("cpu", "gpu", "npu") its ``get_ep_devices()`` entries cover;
    a plugin EP is planned only on those. Names in ``preferences`` are resolved
    (UnknownProviderError, exit 2, for a name aia does not know).
    """
    prefs = preferences or Preferences()
    prefer = tuple(dict.fromkeys(resolve_ep_name(n) for n in prefs.prefer))
    exclude = {resolve_ep_name(n) for n in prefs.exclude}
    extra_options = {resolve_ep_name(k): dict(v) for k, v in prefs.options.items()}
    pinned = {k.lower(): resolve_ep_name(v) for k, v in prefs.devices.items()}
    plugin_kinds = {k: set(v) for k, v in (plugin_device_kinds or {}).items()}
    avail = set(available)
    os_name = inventory.software.os
    cpu = inventory.cpu
    warnings: list[str] = []

    full = [d for d in inventory.software.ort_distributions if not d.plugin]
    if len(full) >= 2:
        names = ", ".join(f"{d.name} {d.version}" for d in full)
        keep = ", ".join(d.name for d in full)
        warnings.append(
            f"Several full ONNX Runtime builds are installed together ({names}): they install "
            "the same onnxruntime module and overwrite each other's files, so which EPs work "
            f"is a matter of install order. Keep one: pip uninstall -y {keep} && "
            "pip install <the one you want>."
        )
    if CPU_EP in exclude:
        exclude.discard(CPU_EP)
        warnings.append(
            "The CPU EP cannot be excluded: ONNX Runtime runs on it every node that "
            "no other EP takes."
        )
    if not avail:
        warnings.append(
            "No ONNX Runtime EPs are available (is onnxruntime installed? pip install "
            "onnxruntime); the plan lists what the hardware could use."
        )

    devices = _devices(inventory)
    choices: list[PlanChoice] = []
    passed: list[PassedOver] = []
    # Per device label: the specs whose targets match it (for unlocks), and its best choice.
    matching: dict[str, list[tuple[EpSpec, Target]]] = {d.label: [] for d in devices}
    matching["cpu"] = []

    for spec in CATALOGUE:
        if spec.remote:
            passed.append(
                PassedOver(
                    spec.name, "remote: calls a hosted endpoint, never planned for local runs"
                )
            )
            continue

        hits: list[tuple[_Device | None, Target]] = []
        for dev in devices:
            t = _accel_target(spec, dev)
            if t is None:
                continue
            assert dev.accelerator is not None
            if not dev.accelerator.usable_driver:
                passed.append(PassedOver(spec.name, f"{dev.label}: no kernel driver bound"))
                continue
            hits.append((dev, t))
        t = _cpu_target(spec, cpu)
        if t is not None:
            hits.append((None, t))

        os_ok = not spec.os or os_name in spec.os
        if os_ok:
            for dev, t in hits:
                matching[dev.label if dev else "cpu"].append((spec, t))

        if spec.name in exclude:
            passed.append(PassedOver(spec.name, "excluded by preferences"))
            continue
        if not os_ok:
            where = " or ".join(_OS_LABEL.get(o, o) for o in spec.os)
            passed.append(PassedOver(spec.name, f"not for this OS: runs on {where} only"))
            continue
        if not hits:
            if not any(p.ep == spec.name for p in passed):
                passed.append(PassedOver(spec.name, f"hardware absent: {spec.absent}"))
            continue
        if spec.name not in avail and spec.name != CPU_EP:
            if all(dev is None and not t.suggest for dev, t in hits):  # OpenVINO on an AMD CPU
                note = next((t.note for _, t in hits if t.note), "")
                passed.append(
                    PassedOver(
                        spec.name,
                        "not in this build, and not suggested for this hardware"
                        + (f" (it {note})" if note else "")
                        + "; planned if installed",
                    )
                )
                continue
            passed.append(PassedOver(spec.name, f"not in this build: {_install_text(spec)}"))
            continue

        source = "plugin" if spec.name in plugin_kinds else "build"
        for dev, t in hits:
            kind = dev.kind if dev else "cpu"
            if source == "plugin" and kind not in plugin_kinds[spec.name]:
                label = dev.label if dev else "cpu"
                passed.append(
                    PassedOver(spec.name, f"{label}: the plugin EP offers no {kind} device here")
                )
                continue
            key = f"{dev.vendor}-{dev.kind}" if dev else f"{cpu.vendor}-cpu"
            if key in pinned and pinned[key] != spec.name and spec.name != CPU_EP:
                label = dev.label if dev else "cpu"
                passed.append(
                    PassedOver(spec.name, f"{label}: preferences use {pinned[key]} on {key}")
                )
                continue
            choices.append(_choice(spec, t, dev, cpu, source, extra_options.get(spec.name)))

    for name in sorted(avail):
        # "OpenVINOExecutionProvider.AUTO" and the like are variants of a known EP.
        if find_spec(name) is None and find_spec(name.split(".")[0]) is None:
            passed.append(PassedOver(name, "not in aia's catalogue: aia does not plan it"))

    ordered = _order(choices, prefer)
    if len(ordered) == 1 and ordered[0].ep == CPU_EP:  # nothing to come after: say so
        only = ordered[0]
        ordered = [replace(only, reason=only.reason.replace(CPU_LAST, "; the only EP usable here"))]
    for ep in prefer:
        if not any(c.ep == ep for c in ordered):
            why = "; ".join(p.reason for p in passed if p.ep == ep) or "no usable device"
            warnings.append(f"Preferred {ep} is not usable here: {why}.")

    for key, ep in pinned.items():
        kind = key.rsplit("-", 1)[-1]
        if not any(c.ep == ep and c.device_kind == kind for c in ordered) and ep != CPU_EP:
            warnings.append(
                f"Preferences use {ep} on {key}, but it is not usable on any such device here."
            )

    unlocks = _unlocks(
        devices, matching, ordered, avail, exclude, full, cpu, inventory.software.ort_version
    )
    return ProviderPlan(
        choices=tuple(ordered),
        passed_over=tuple(passed),
        unlocks=tuple(unlocks),
        warnings=tuple(warnings),
    )


CPU_LAST = "; the CPU EP comes last: it runs every operator no other EP takes"

# The ISA features behind aia's choices, and what each buys (int8 and bf16 kernels).
_FEATURE_NOTES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("amx_int8", "amx_bf16"), "AMX (int8/bf16 matrix tiles)"),
    (("avx512_vnni", "avx_vnni"), "VNNI (int8 dot products: quantized models)"),
    (("avx512_bf16",), "AVX512-BF16 (bf16 math)"),
    (("i8mm",), "I8MM (int8 matrix multiply)"),
    (("bf16",), "BF16"),
)


def cpu_features_note(cpu: CpuInfo) -> str:
    """``, avx2, avx512f; VNNI (int8 ...), AVX512-BF16 (...)``: the vector width and the
    features that matter for int8/bf16 models, as the plan's reason line says them."""
    base = [f for f in ("avx2", "avx512f", "neon", "sve") if cpu.has(f)]
    extra = [note for flags, note in _FEATURE_NOTES if any(cpu.has(f) for f in flags)]
    if not extra and cpu.architecture in ("x86_64", "amd64"):
        extra = ["no VNNI: int8 models gain little"]
    text = ", ".join(base)
    if extra:
        text += ("; " if text else "") + ", ".join(extra)
    return f", {text}" if text else ""


def _choice(
    spec: EpSpec,
    t: Target,
    dev: _Device | None,
    cpu: CpuInfo,
    source: str,
    extra: Mapping[str, Any] | None,
) -> PlanChoice:
    options: dict[str, Any] = {}
    if dev is None:
        options.update(t.default_options())
        what = f"{cpu.model_name} ({cpu.architecture}{cpu_features_note(cpu)})"
        label, kind, score = "cpu", "cpu", t.score
    else:
        options.update(
            t.default_options(dev.ordinal, several=dev.several, kind_index=dev.kind_index)
        )
        acc = dev.accelerator
        assert acc is not None
        what = f"{acc.name} (driver {acc.driver})"
        label, kind = dev.label, dev.kind
        # A discrete device outranks an integrated one served by the same EP.
        score = t.score - (3 if acc.integrated else 0)
    where = "is registered as a plugin EP" if source == "plugin" else "is in this build"
    reason = f"{what} and {spec.name} {where}"
    if spec.name == CPU_EP:
        reason += CPU_LAST
    if t.note:
        reason += f"; {t.note}"
    if extra:
        options.update(extra)
    return PlanChoice(
        ep=spec.name,
        short=short_name(spec.name),
        device=label,
        device_kind=kind,
        options=options,
        reason=reason,
        score=score,
        source=source,
    )


def _order(choices: list[PlanChoice], prefer: tuple[str, ...]) -> list[PlanChoice]:
    """Preferred EPs first (in the given order), then by score; the CPU EP last unless preferred."""

    def key(c: PlanChoice) -> tuple[int, int]:
        return (-c.score, _KIND_ORDER.get(c.device_kind, 9))

    ranked = sorted(choices, key=key)  # stable: inventory order breaks ties
    head = [c for ep in prefer for c in ranked if c.ep == ep]
    rest = [c for c in ranked if c.ep not in prefer and c.ep != CPU_EP]
    tail = [c for c in ranked if c.ep == CPU_EP and CPU_EP not in prefer]
    return head + rest + tail


def _unlocks(
    devices: list[_Device],
    matching: dict[str, list[tuple[EpSpec, Target]]],
    choices: list[PlanChoice],
    avail: set[str],
    exclude: set[str],
    full: list[Any],
    cpu: CpuInfo,
    ort_version: str | None,
) -> list[Unlock]:
    out: list[Unlock] = []
    full_names = [d.name for d in full]
    labels = [d.label for d in devices if d.accelerator and d.accelerator.usable_driver] + ["cpu"]
    names = {d.label: d.accelerator.name for d in devices if d.accelerator}
    names["cpu"] = cpu.model_name
    for label in labels:
        best = _suggestion([(s, t) for s, t in matching[label] if s.name not in exclude])
        if best is None:
            continue
        spec, target = best
        if spec.name in avail:
            continue
        served = [c for c in choices if c.device == label]
        current = max(served, key=lambda c: c.score) if served else None
        if current is not None and current.score >= target.score:
            continue
        cmd, how = _pip_command(spec, full_names)
        now = f" (now served by {current.ep})" if current else ""
        reason = f"{names[label]} is present{now} but {spec.name} is not in this build; {how}"
        # Replacing the full build would take away the EPs that serve other devices.
        lost = []
        if spec.full_builds and [n for n in full_names if n != spec.full_builds[0]]:
            lost = [
                c
                for c in choices
                if c.source == "build"
                and c.ep != CPU_EP
                and c.device != label
                and spec.full_builds[0] not in _full_builds_of(c.ep)
            ]
        plugin_ok = bool(spec.plugin_packages) and _at_least(ort_version, (1, 23))
        if lost and plugin_ok:
            cmd = f"pip install {spec.plugin_packages[0]}"
            reason = (
                f"{names[label]} is present{now} but {spec.name} is not in this build; "
                f"{spec.plugin_packages[0]} is a plugin EP that installs beside the current "
                "build and keeps its EPs"
            )
        elif lost:
            gone = ", ".join(sorted({f"{c.ep} on {c.device}" for c in lost}))
            reason += f"; replacing the build loses {gone}"
        elif spec.full_builds and plugin_ok:
            reason += f"; or, beside onnxruntime >= 1.23: pip install {spec.plugin_packages[0]}"
        if spec.install_note and spec.full_builds:
            reason += f"; {spec.install_note}"
        out.append(Unlock(device=label, reason=reason, pip=cmd, url=spec.install_url))
    return out


def plan_for_machine(
    preferences: Preferences | None = None,
    *,
    inventory: Inventory | None = None,
    disk_cache: bool = False,
    refresh: bool = False,
) -> ProviderPlan:
    """Detect this machine, register plugin EPs, and plan (``plan`` on the real facts).

    ``disk_cache`` (``aia detect``) reuses the EPs and plugin devices an earlier call
    stored for this environment (hardware/detectcache.py), so onnxruntime need not be
    imported; ``refresh`` asks ONNX Runtime again. A process that builds sessions
    must not rely on the cache for registration: the session builder registers
    plugin EPs itself.
    """
    if inventory is None:
        from aialliance_cli.hardware import detect

        inventory = detect()
    inputs = None
    if disk_cache and not refresh:
        from aialliance_cli.hardware import detectcache

        inputs = detectcache.load("plan-inputs")
    if inputs is None:
        inputs = _plan_inputs()
        if disk_cache:
            from aialliance_cli.hardware import detectcache

            detectcache.store("plan-inputs", inputs)
    kinds = {name: set(k) for name, k in inputs["kinds"].items()}
    result = plan(inventory, inputs["available"], preferences, plugin_device_kinds=kinds or None)
    return replace(result, warnings=(*result.warnings, *inputs["notes"]))


def _plan_inputs() -> dict[str, Any]:
    """The EPs this build offers and the device kinds of registered plugin EPs, as JSON data."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return {
            "available": [],
            "kinds": {},
            "notes": [f"onnxruntime cannot be imported: {exc}"],
        }

    from aialliance_cli.providers.plugins import plugin_devices, register_plugins

    registered = register_plugins(ort)
    devices = plugin_devices(ort)
    built_in = list(ort.get_available_providers())
    # EPs that list a device are usable even when get_available_providers()
    # does not name them (plugin EPs, and ORT's own bundled plugin libraries).
    available = list(dict.fromkeys([*built_in, *(d.ep_name for d in devices)]))
    # After registration get_available_providers() names plugin EPs too, but a
    # session asked for them by name silently runs on the CPU: they must be
    # chosen through their devices, so every EP a plugin registered counts as one.
    kinds: dict[str, set[str]] = {name: set() for r in registered if r.ok for name in r.ep_names}
    for d in devices:
        if d.ep_name in kinds:
            kinds[d.ep_name].add(d.device_type)
    # A registered plugin EP is available, but only on the device kinds it lists.
    available += [name for name in kinds if name not in available]
    notes = [f"Plugin {r.package}: {r.note}" for r in registered if not r.ok]
    notes += [
        f"Plugin EP {name} is registered but offers no device on this machine."
        for name, k in kinds.items()
        if not k
    ]
    return {
        "available": available,
        "kinds": {name: sorted(k) for name, k in kinds.items()},
        "notes": notes,
    }
