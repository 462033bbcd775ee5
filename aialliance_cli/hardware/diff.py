"""Where machines differ: their inventories and EP plans side by side (`aia detect --diff`).

Input is what ``aia detect --json`` prints (``aia.detect/1``: ``inventory`` and
``plan``), one document per machine, each with a name. ``machine_facts()``
flattens one document to the facts that change a benchmark; ``diff_machines()``
lines them up and adds a note per difference worth acting on: an ISA flag
some machines lack, a GPU without a GPU build of ONNX Runtime, differing ONNX
Runtime versions or planned EPs. ``aia fleet detect --diff`` uses the same
functions on every node of a Ray cluster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError

DETECT_SCHEMA = "aia.detect/1"

# The ISA flags that change which kernels ONNX Runtime (and OpenVINO) can use.
ISA_FLAGS = (
    "sse4.2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "neon",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
)


@dataclass(frozen=True)
class Difference:
    """One fact across machines: its value on each (same order as the names)."""

    fact: str
    values: tuple[str, ...]

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


@dataclass(frozen=True)
class MachineDiff:
    """Every fact of every machine, which ones differ, and notes on the differences."""

    names: tuple[str, ...]
    facts: tuple[Difference, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def differences(self) -> tuple[Difference, ...]:
        return tuple(f for f in self.facts if f.differs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "aia.detect-diff/1",
            "machines": list(self.names),
            "facts": [
                {"fact": f.fact, "values": dict(zip(self.names, f.values, strict=True))}
                for f in self.facts
            ],
            "differences": [f.fact for f in self.differences],
            "notes": list(self.notes),
        }


def load_detect(path: str | Path) -> dict[str, Any]:
    """A saved ``aia detect --json`` document; BadInputError naming the file otherwise."""
    p = Path(path).expanduser()
    hint = "Save one on the other machine with `aia detect --json > other.json`."
    from aialliance_cli.safeparse import bounded_json, read_small_text

    text = read_small_text(p, "--diff", hint=hint)  # not a FIFO or /dev/zero

    try:
        doc = bounded_json(text, f"--diff {p}")
    except json.JSONDecodeError as exc:
        raise BadInputError(
            f"--diff {p} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). {hint}"
        ) from None
    return check_detect(doc, str(p))


def check_detect(doc: Any, where: str) -> dict[str, Any]:
    """``doc`` if it is an aia.detect/1 document (an inventory alone is accepted too)."""
    hint = "Save one with `aia detect --json > other.json`."
    if not isinstance(doc, Mapping):
        raise BadInputError(f"{where} holds JSON but not an object of `aia detect --json`. {hint}")
    if "inventory" not in doc and "cpu" in doc and "software" in doc:
        doc = {"schema": DETECT_SCHEMA, "inventory": dict(doc), "plan": {}}
    schema = doc.get("schema")
    if schema is not None and schema != DETECT_SCHEMA:
        raise BadInputError(
            f"{where} has schema '{schema}'; `aia detect --diff` reads '{DETECT_SCHEMA}' "
            f"(what `aia detect --json` prints). {hint}"
        )
    inv = doc.get("inventory")
    if not isinstance(inv, Mapping) or not isinstance(inv.get("cpu"), Mapping):
        raise BadInputError(f"{where} has no 'inventory' with a 'cpu' key. {hint}")
    return dict(doc)


def _g(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def _gib(n: Any) -> str:
    return f"{n / 2**30:.0f} GiB" if isinstance(n, (int, float)) and n else "n/a"


def _plain(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def machine_facts(doc: Mapping[str, Any]) -> dict[str, str]:
    """The facts of one ``aia.detect/1`` document that change a benchmark, as text."""
    inv = doc.get("inventory") or {}
    cpu = inv.get("cpu") or {}
    sw = inv.get("software") or {}
    plan = doc.get("plan") or {}
    features = set(cpu.get("features") or [])
    facts: dict[str, str] = {
        "host": _plain(inv.get("hostname")),
        "CPU": _plain(cpu.get("model_name")),
        "architecture": _plain(cpu.get("architecture")),
        "cores (physical/logical)": f"{_plain(cpu.get('physical_cores'))}/"
        f"{_plain(cpu.get('logical_cores'))}",
        "memory": _gib(_g(inv, "memory", "total_bytes")),
        "ISA": _plain([f for f in ISA_FLAGS if f in features]),
    }
    accs = inv.get("accelerators") or []
    facts["accelerators"] = _plain(
        [f"{a.get('kind', '?')}: {a.get('name') or a.get('device_id') or '?'}" for a in accs]
    )
    facts["accelerator drivers"] = _plain(
        sorted(
            {
                f"{a.get('driver') or 'none'} {a.get('driver_version') or ''}".strip()
                for a in accs
                if isinstance(a, Mapping)
            }
        )
    )
    facts["OS"] = _plain(f"{sw.get('os') or ''} {sw.get('os_release') or ''}".strip())
    facts["Python"] = _plain(sw.get("python"))
    facts["ONNX Runtime"] = _plain(sw.get("ort_version") or "not importable")
    facts["ORT packages"] = _plain(
        [f"{d.get('name')} {d.get('version')}" for d in sw.get("ort_distributions") or []]
    )
    facts["EPs in build"] = _plain(
        [_short(e) for e in sw.get("available_providers") or [] if e != "AzureExecutionProvider"]
    )
    choices = plan.get("choices") or []
    facts["planned EP"] = _plain(
        f"{_short(choices[0].get('ep'))} ({choices[0].get('device')})" if choices else None
    )
    facts["present but unusable"] = _plain(
        [str(u.get("device")) for u in plan.get("unlocks") or []]
    )
    return facts


def _short(ep: Any) -> str:
    if not ep:
        return "-"
    from aialliance_cli.providers.catalogue import short_name

    try:
        return short_name(str(ep))
    except Exception:  # an EP outside the catalogue keeps its name
        return str(ep)


def diff_machines(named: Sequence[tuple[str, Mapping[str, Any]]]) -> MachineDiff:
    """Line up the facts of several machines and note the differences worth acting on."""
    names = tuple(n for n, _ in named)
    per = [machine_facts(doc) for _, doc in named]
    keys = list(dict.fromkeys(k for f in per for k in f))
    facts = tuple(Difference(k, tuple(f.get(k, "-") for f in per)) for k in keys)
    return MachineDiff(names=names, facts=facts, notes=tuple(_notes(named)))


def _notes(named: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    notes: list[str] = []
    if len(named) < 2:
        return notes
    flags = {n: set(_g(d, "inventory", "cpu", "features") or []) for n, d in named}
    arches = {_g(d, "inventory", "cpu", "architecture") for _, d in named}
    for flag in ISA_FLAGS:
        have = [n for n in flags if flag in flags[n]]
        lack = [n for n in flags if flag not in flags[n]]
        if have and lack and len(arches) == 1:
            notes.append(
                f"no {flag} on {', '.join(lack)} (present on {', '.join(have)}): {_why(flag)}"
            )
    versions = {n: _g(d, "inventory", "software", "ort_version") for n, d in named}
    if len(set(versions.values())) > 1:
        notes.append(
            "ONNX Runtime versions differ ("
            + ", ".join(f"{n} {v or 'none'}" for n, v in versions.items())
            + "): kernels and fusions change between releases; pin one version to compare "
            "hardware alone"
        )
    for n, d in named:
        for u in _g(d, "plan", "unlocks") or []:
            if not isinstance(u, Mapping):
                continue
            device = str(u.get("device") or "")
            if device.startswith(("gpu", "npu")):
                fix = u.get("pip") or u.get("url") or ""
                notes.append(
                    f"{n} has {device} but no ONNX Runtime build that can use it"
                    + (f"; fix: {fix}" if fix else "")
                )
    planned = {n: _short((_g(d, "plan", "choices") or [{}])[0].get("ep")) for n, d in named}
    if len(set(planned.values())) > 1:
        notes.append(
            "the planned EPs differ ("
            + ", ".join(f"{n} {e}" for n, e in planned.items())
            + "): a benchmark compares the EPs as well as the hardware unless --ep forces one"
        )
    return notes


def _why(flag: str) -> str:
    if "vnni" in flag or flag in ("amx_int8", "asimddp", "i8mm"):
        return "int8 (quantized) models run markedly slower without it"
    if "bf16" in flag or "fp16" in flag or flag == "amx_bf16":
        return "bf16/fp16 kernels fall back to fp32 without it"
    if flag.startswith("avx512"):
        return "ONNX Runtime falls back to AVX2 kernels without it"
    return "some kernels fall back to slower paths without it"
