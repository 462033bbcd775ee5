"""`aia run` and `aia bench` use the tuned record that matches the target here.

    apply_tuned()   (target, overrides) -> the tuned target and overrides, the record, notes

A record applies when its key matches (this machine's fingerprint, the model's
sha256, this ORT build, the objective) and the user named none of the settings
it sets (--ep, --threads, --variant, --batch): what the user types always wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


def _quiet(_: str) -> None:
    pass


@dataclass
class Tuned:
    """What apply_tuned decided: the record used (or None) and the notes to show."""

    target: Any
    overrides: Any
    record: Any = None
    candidate: Any = None
    notes: list[str] = field(default_factory=list)

    def result_record(self) -> dict[str, Any]:
        """The ``tuned`` key of a run or bench result (docs/results.md)."""
        if self.record is None:
            return {"applied": False, "notes": list(self.notes)}
        return {"applied": True, **self.record.result_record(), "notes": list(self.notes)}


def apply_tuned(
    target: Any,
    overrides: Any,
    *,
    given: Mapping[str, Any],
    inventory: Any = None,
    envs: Any = None,
    here_only: bool = False,
    objectives: tuple[str, ...] = ("latency", "throughput"),
    status: Callable[[str], None] = _quiet,
) -> Tuned:
    """The target and overrides with the matching tuned record applied.

    ``given`` maps option names (``--threads``) to what the user passed; any given
    one keeps the record out. ``here_only`` (aia run): a winner that runs in a
    registered environment cannot apply, since run runs in this process.
    """
    from aialliance_cli.tune import records
    from aialliance_cli.tune.space import Candidate

    if inventory is None:
        from aialliance_cli.hardware import detect

        inventory = detect()
    if envs is None:
        from aialliance_cli.envs.registry import list_envs

        envs = list_envs()
    if not records.records_dir().is_dir():
        return Tuned(target, overrides)
    sha = records.model_sha256(target.model_path)
    rec, notes = None, []
    for objective in objectives:
        rec, more = records.find_record(target.name, sha, inventory, objective, envs)
        notes += more
        if rec is not None:
            break
    if rec is None:
        return Tuned(target, overrides, notes=notes)
    named = [k for k, v in given.items() if v not in (None, [], (), "")]
    if named:
        notes.append(
            f"tuned settings of {rec.date()} not applied: {', '.join(named)} given "
            "(what you name wins)"
        )
        return Tuned(target, overrides, notes=notes)
    cand = Candidate.from_dict(rec.winner)
    if here_only and cand.env:
        notes.append(
            f"tuned settings of {rec.date()} not applied: the winner runs in environment "
            f"'{cand.env}', and aia run runs here (aia bench uses it)"
        )
        return Tuned(target, overrides, notes=notes)
    from aialliance_cli.tune.prepare import prepared_target

    tgt = prepared_target(target, cand.precision, status)
    ov = replace(
        overrides,
        ep=cand.ep,
        threads=cand.threads,
        batch=cand.batch if cand.batch is not None else overrides.batch,
        session=cand.session_settings(),
    )
    return Tuned(tgt, ov, rec, cand, notes)
