"""How closely a candidate's outputs agree with the fp32 CPU reference, per task.

    sentence-embedding   cosine of the pooled (and normalised) embeddings, mean over inputs
    text-classification  top-1 agreement of the first output
    otherwise            1 - relative L2 error per float output (exact match for integers),
                         the worst output; max absolute and relative errors are reported

Scores lie in [0, 1]; 1 is identical. A candidate scoring below the threshold
(``--min-accuracy``, default :data:`DEFAULT_MIN`) is rejected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_MIN = {"sentence-embedding": 0.99, "text-classification": 0.99}
GENERIC_MIN = 0.99


def default_min(task: str | None) -> float:
    return DEFAULT_MIN.get(task or "", GENERIC_MIN)


def metric_name(task: str | None) -> str:
    return {"sentence-embedding": "cosine", "text-classification": "top-1 agreement"}.get(
        task or "", "1 - relative error"
    )


def agreement(
    target: Any,
    reference: list[dict[str, np.ndarray]],
    candidate: list[dict[str, np.ndarray]],
    feeds: list[dict[str, np.ndarray]],
) -> dict[str, Any]:
    """Compare output sets (one dict per input set); returns metric, value, min, details."""
    task = target.profile.task if target.profile is not None else None
    n = min(len(reference), len(candidate))
    out: dict[str, Any] = {"metric": metric_name(task), "inputs": n}
    if task == "sentence-embedding":
        from aialliance_cli.runtime.api import _pooled_embedding

        cos = []
        for ref, cand, feed in zip(reference, candidate, feeds, strict=False):
            a = _pooled_embedding(target, ref, feed)
            b = _pooled_embedding(target, cand, feed)
            a = a.reshape(-1, a.shape[-1]).astype(np.float64)
            b = b.reshape(-1, b.shape[-1]).astype(np.float64)
            num = (a * b).sum(-1)
            den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
            cos += list(np.where(den > 0, num / np.maximum(den, 1e-30), 0.0))
        out.update(value=float(np.mean(cos)), min=float(np.min(cos)))
    elif task == "text-classification":
        agree = []
        for ref, cand in zip(reference, candidate, strict=False):
            name = next(iter(ref))
            agree += list((np.argmax(ref[name], axis=-1) == np.argmax(cand[name], axis=-1)).ravel())
        out.update(value=float(np.mean(agree)), min=float(np.min(agree)))
    else:
        per_output: dict[str, dict[str, float]] = {}
        for name in reference[0] if reference else ():
            scores, max_abs, max_rel = [], 0.0, 0.0
            for ref, cand in zip(reference, candidate, strict=False):
                a = np.asarray(ref[name])
                b = np.asarray(cand.get(name))
                if b.shape != a.shape:
                    scores.append(0.0)
                    continue
                if a.dtype.kind not in "fc":
                    scores.append(float(np.mean(a == b)))
                    continue
                a64, b64 = a.astype(np.float64), b.astype(np.float64)
                diff = np.abs(a64 - b64)
                norm = np.linalg.norm(a64)
                rel = np.linalg.norm(a64 - b64) / norm if norm > 0 else float(diff.max() > 0)
                scores.append(max(0.0, 1.0 - float(rel)))
                if diff.size:
                    max_abs = max(max_abs, float(diff.max()))
                    max_rel = max(max_rel, float((diff / np.maximum(np.abs(a64), 1e-6)).max()))
            per_output[name] = {
                "score": float(np.mean(scores)) if scores else 0.0,
                "min": float(np.min(scores)) if scores else 0.0,
                "max_abs_error": max_abs,
                "max_rel_error": max_rel,
            }
        worst = min(per_output.values(), key=lambda d: d["score"]) if per_output else None
        out.update(
            value=worst["score"] if worst else 0.0,
            min=worst["min"] if worst else 0.0,
            outputs=per_output,
        )
    if not np.isfinite(out["value"]):
        out["value"] = 0.0
    return out
