"""Tuned records: the winner of `aia tune`, remembered per machine, model, ORT and objective.

A record is one JSON file under ``<user data dir>/tuned/``, written atomically, named by
the hash of its key:

    (hardware fingerprint, model content sha256, ORT distribution+version, objective)

The fingerprint is what changes a winner: the CPU model and ISA flags, the core
counts, the accelerators and their drivers, the ORT build; never the hostname.
``find_record()`` returns the record that applies to a target here, and a note for
each record of the same target that no longer does (other machine, ORT or model).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "aia.tuned/1"


# ----------------------------------------------------------------------------- keys


def hardware_fingerprint(inventory: Any) -> dict[str, Any]:
    """The facts of a machine that decide which configuration wins (not the hostname)."""
    cpu = inventory.cpu
    return {
        "cpu": {
            "model": cpu.model_name,
            "architecture": cpu.architecture,
            "features": sorted(cpu.features),
            "physical_cores": cpu.physical_cores,
            "logical_cores": cpu.logical_cores,
            "sockets": cpu.sockets,
        },
        "accelerators": sorted(
            (
                {
                    "kind": a.kind,
                    "vendor": a.vendor,
                    "name": a.name,
                    "driver": a.driver,
                    "driver_version": a.driver_version,
                }
                for a in inventory.accelerators
            ),
            key=lambda d: json.dumps(d, sort_keys=True),
        ),
        "onnxruntime": ort_build(inventory),
    }


def ort_build(inventory: Any) -> str:
    """``onnxruntime==1.32.0`` (every ORT distribution of this environment, sorted)."""
    sw = inventory.software
    dists = sorted(f"{d.name}=={d.version}" for d in sw.ort_distributions)
    return ",".join(dists) or f"onnxruntime=={sw.ort_version}"


def fingerprint_id(fingerprint: dict[str, Any]) -> str:
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_sha256(model_path: Path) -> str:
    """The content hash of a model (memoised by its stat, shared with the FLOP facts)."""
    from aialliance_cli.analysis.facts import content_digest

    return content_digest(model_path)


def record_key(fp_id: str, model_sha: str, ort: str, objective: str) -> str:
    text = "|".join((fp_id, model_sha, ort, objective))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# ----------------------------------------------------------------------------- records


@dataclass
class TunedRecord:
    """The winner of one `aia tune` and what it was measured against."""

    target: str  # profile name or model file name
    model_sha256: str
    fingerprint_id: str
    fingerprint: dict[str, Any]
    onnxruntime: str  # ORT distribution(s)+version of the environment aia ran in
    objective: str
    winner: dict[str, Any]  # space.Candidate.to_dict()
    label: str
    description: str  # "int8 dynamic, 2 threads"
    p50_ms: float | None
    p50_ci95: list[float] | None
    speedup_default: float | None  # ORT default p50 / winner p50
    verdict_default: str | None
    speedup_plan: float | None
    verdict_plan: str | None
    accuracy: dict[str, Any] | None
    load: dict[str, Any] | None
    created: str = ""
    environment: dict[str, Any] | None = None  # the registered env the winner runs in
    budget_s: float | None = None
    trials: int | None = None
    schema: str = SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return record_key(self.fingerprint_id, self.model_sha256, self.onnxruntime, self.objective)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TunedRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def date(self) -> str:
        return (self.created or "")[:10]

    def summary_line(self) -> str:
        """``tuned 2026-12-01: int8 dynamic, 2 threads, 1.7x over default``."""
        if self.speedup_default is None:
            over = "no speed-up measured"
        elif self.verdict_default == "faster":
            over = f"{self.speedup_default:.1f}x over default"
        else:
            over = f"{self.speedup_default:.1f}x over default, within noise"
        return f"tuned {self.date()}: {self.description}, {over}"

    def result_record(self) -> dict[str, Any]:
        """What a run or bench result says about the tuned settings it used."""
        return {
            "key": self.key,
            "created": self.created,
            "objective": self.objective,
            "config": dict(self.winner),
            "label": self.label,
            "speedup_default": self.speedup_default,
            "verdict_default": self.verdict_default,
            "accuracy": self.accuracy,
            "summary": self.summary_line(),
        }


def records_dir() -> Path:
    from aialliance_cli.paths import user_dirs

    return user_dirs().data / "tuned"


def save_record(record: TunedRecord) -> Path:
    """Write the record atomically (replacing the one with the same key)."""
    from aialliance_cli.results.store import write_json_atomic

    if not record.created:
        record.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    folder = records_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.key}.json"
    write_json_atomic(path, record.to_dict())
    return path


def list_records() -> list[tuple[Path, TunedRecord]]:
    """Every record on disk, newest first; unreadable files are skipped."""
    folder = records_dir()
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.name.startswith("."):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("schema") != SCHEMA:
                continue
            out.append((path, TunedRecord.from_dict(data)))
        except (OSError, json.JSONDecodeError, TypeError, AttributeError):
            continue
    out.sort(key=lambda pr: pr[1].created, reverse=True)
    return out


def clear_records(target: str | None = None) -> int:
    """Delete every record (or those of ``target``); returns how many."""
    n = 0
    for path, rec in list_records():
        if target is None or rec.target == target:
            path.unlink(missing_ok=True)
            n += 1
    return n


def records_for_machine(inventory: Any) -> list[TunedRecord]:
    """The records made on a machine with this fingerprint and ORT build."""
    fp = fingerprint_id(hardware_fingerprint(inventory))
    ort = ort_build(inventory)
    return [r for _, r in list_records() if r.fingerprint_id == fp and r.onnxruntime == ort]


def find_record(
    target_name: str,
    model_sha: str,
    inventory: Any,
    objective: str = "latency",
    envs: Any = None,
) -> tuple[TunedRecord | None, list[str]]:
    """The record for this target here and now, and a note per record that no longer fits."""
    fp = hardware_fingerprint(inventory)
    fp_id = fingerprint_id(fp)
    ort = ort_build(inventory)
    notes: list[str] = []
    found = None
    for _, rec in list_records():
        if rec.objective != objective:
            continue
        same_model = rec.model_sha256 == model_sha
        if not same_model and rec.target != target_name:
            continue
        why = _mismatch(rec, model_sha, fp, fp_id, ort, envs)
        if why is None and found is None:
            found = rec
        elif why is not None:
            notes.append(f"tuned record of {rec.date()} for {rec.target} ignored: {why}")
    return found, notes


def _mismatch(
    rec: TunedRecord, model_sha: str, fp: dict[str, Any], fp_id: str, ort: str, envs: Any
) -> str | None:
    if rec.model_sha256 != model_sha:
        return "the model changed since (its sha256 differs); tune it again"
    if rec.onnxruntime != ort:
        return f"it was tuned with {rec.onnxruntime}, this is {ort}"
    if rec.fingerprint_id != fp_id:
        return "it was tuned on other hardware (" + _hw_diff(rec.fingerprint, fp) + ")"
    env = rec.environment
    if env and envs is not None:
        match = [e for e in envs if e.name == env.get("name")]
        if not match:
            return f"its environment '{env.get('name')}' is no longer registered"
        if match[0].onnxruntime != env.get("onnxruntime"):
            return (
                f"its environment '{env.get('name')}' now holds ONNX Runtime "
                f"{match[0].onnxruntime}, not {env.get('onnxruntime')}"
            )
    return None


def _hw_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    diffs = []
    o_cpu, n_cpu = old.get("cpu") or {}, new.get("cpu") or {}
    for key in ("model", "physical_cores", "logical_cores", "sockets", "architecture"):
        if o_cpu.get(key) != n_cpu.get(key):
            diffs.append(f"{key.replace('_', ' ')} {o_cpu.get(key)} -> {n_cpu.get(key)}")
    if o_cpu.get("features") != n_cpu.get("features"):
        gone = sorted(set(o_cpu.get("features") or ()) - set(n_cpu.get("features") or ()))
        new_f = sorted(set(n_cpu.get("features") or ()) - set(o_cpu.get("features") or ()))
        diffs.append(
            "CPU flags differ"
            + (f" (lost {', '.join(gone)})" if gone else "")
            + (f" (gained {', '.join(new_f)})" if new_f else "")
        )
    if old.get("accelerators") != new.get("accelerators"):
        diffs.append("accelerators or drivers differ")
    return "; ".join(diffs) or "the fingerprint differs"
