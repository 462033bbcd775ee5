"""Output agreement: a candidate's outputs against the fp32 CPU-EP reference, same inputs.

    inputs = profile_inputs(target, 16)              # real sentences where the profile has text
    ref = reference(target, inputs)                  # fp32 model on the CPU EP, computed once
    agreement = compare(ref, run_outputs(candidate_path, inputs.feeds))
    agreement.passes()                               # the task's default threshold

The metric follows the profile's task: sentence embeddings compare the cosine
of the pooled (and normalised) output, classifiers the top-1 class; anything
else the maximum absolute and relative error of every output (relative to the
reference output's largest magnitude). ``score`` is the one number a threshold
reads: the mean cosine, the top-1 agreement, or 1 - the worst relative error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aialliance_cli.errors import BadInputError, ModelError, UnavailableError

MIN_INPUTS = 16
MAX_INPUTS = 10_000  # a larger check only costs time: 1e8 ran until killed
CALIBRATION_START = 16  # calibration sets start past the ones the check reads first
DEFAULT_MIN_ACCURACY: dict[str, float] = {
    "sentence-embedding": 0.99,  # mean cosine of the pooled embeddings
    "text-classification": 0.95,  # top-1 agreement
}
FALLBACK_MIN_ACCURACY = 0.99  # 1 - worst relative error
INPUT_KINDS = ("auto", "sentences", "synthetic", "random")


def default_min_accuracy(task: str | None) -> float:
    """The threshold a candidate must reach for a task (docs/commands.md#aia-quantize)."""
    return DEFAULT_MIN_ACCURACY.get(task or "generic", FALLBACK_MIN_ACCURACY)


def check_min_accuracy(value: float | None, flag: str = "--min-accuracy") -> float | None:
    """None stays None; otherwise a finite number in (0, 1], else BadInputError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInputError(f"{flag} must be a number between 0 and 1, got {value!r}")
    if not 0 < value <= 1:
        raise BadInputError(f"{flag} must be above 0 and at most 1, got {value}")
    return float(value)


# ----------------------------------------------------------------------------- inputs


@dataclass
class InputSet:
    """Distinct input sets for a check, and what they are (``kind``: sentences|synthetic|random)."""

    feeds: list[dict[str, np.ndarray]]
    kind: str
    dims: dict[str, int] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        from aialliance_cli.tune.quantize import feeds_digest

        return feeds_digest(self.feeds)

    def describe(self) -> str:
        what = {
            "sentences": "real sentences",
            "synthetic": "the profile's input sets",
            "random": "random token ids",
        }.get(self.kind, self.kind)
        return f"{len(self.feeds)} {what}"


def _texts_of(target: Any, ov: Any) -> list[str] | None:
    if ov is not None and getattr(ov, "text", None) is not None:
        return [ov.text]
    prof = target.profile
    text_cfg = prof.inputs.text if prof is not None and prof.inputs is not None else None
    if text_cfg is None:
        return None
    return [text_cfg.value] if isinstance(text_cfg.value, str) else list(text_cfg.value)


def cpu_session(model_path: Path) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"ONNX Runtime's CPU EP cannot load {model_path}: {msg}") from exc


def profile_inputs(
    target: Any,
    n: int = MIN_INPUTS,
    *,
    kind: str = "auto",
    start: int = 0,
    overrides: Any = None,
    session: Any = None,
) -> InputSet:
    """``n`` distinct input sets for ``target`` (a runtime Target), the way aia makes inputs.

    ``auto`` is ``sentences`` when the profile takes text (its own text first,
    then aia's real sentences, tokenized by the model's tokenizer), else
    ``synthetic`` (the rotating input sets bench uses: seeds ``start`` ..
    ``start + n - 1``). ``random`` is the rotating sets of a text profile: random
    token ids at the positions of the profile's text.
    """
    from aialliance_cli.runtime.api import Overrides, make_feeds

    if kind not in INPUT_KINDS:
        raise BadInputError(f"unknown input kind '{kind}'; use one of: {', '.join(INPUT_KINDS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise BadInputError(f"the number of input sets must be 1 or more, got {n!r}")
    ov = overrides or Overrides()
    session = session or cpu_session(Path(target.model_path))
    texts = _texts_of(target, ov)
    names = {i.name for i in session.get_inputs()}
    has_text = texts is not None and "input_ids" in names
    if kind == "auto":
        kind = "sentences" if has_text else "synthetic"
    if kind == "sentences":
        if not has_text:
            raise BadInputError(
                f"{target.name} takes no text (no inputs.text in its profile or no input_ids "
                "input), so it cannot be checked on sentences"
            )
        return _sentence_sets(target, ov, session, texts or [], n, start)
    if kind == "random" and has_text:
        start = max(start, 1)  # set 0 is the profile's own text
    feeds, dims = make_feeds(session, target, ov, n_sets=start + n)
    return InputSet(feeds[start:], "random" if has_text else "synthetic", dims)


def _sentence_sets(
    target: Any, ov: Any, session: Any, texts: list[str], n: int, start: int
) -> InputSet:
    from aialliance_cli.runtime import inputs as I
    from aialliance_cli.runtime.api import _tokenized, make_feeds
    from aialliance_cli.tune.sentences import SENTENCES

    base, dims = make_feeds(session, target, ov, n_sets=1)
    specs = I.input_specs(session)
    ids_spec = next(s for s in specs if s.name == "input_ids")
    batch = I.concrete_shape(ids_spec, dims)[0] if ids_spec.shape else 1
    pool = list(dict.fromkeys([*texts, *SENTENCES]))
    prof = target.profile
    text_cfg = prof.inputs.text if prof is not None and prof.inputs is not None else None
    feeds = []
    for i in range(n):
        first = (start + i) * batch
        chunk = [pool[(first + j) % len(pool)] for j in range(batch)]
        feeds.append({**base[0], **_tokenized(specs, dims, chunk, target, text_cfg)})
    return InputSet(feeds, "sentences", dims)


# ----------------------------------------------------------------------------- outputs


def run_outputs(
    model_path: str | Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    session: Any = None,
    providers: Sequence[Any] | None = None,
    session_options: Any = None,
) -> list[dict[str, np.ndarray]]:
    """Every output of the model for every input set (a session is built unless given)."""
    import onnxruntime as ort

    if session is None:
        if providers is None and session_options is None:
            session = cpu_session(Path(model_path))
        else:
            so = session_options or ort.SessionOptions()
            session = ort.InferenceSession(
                str(model_path), so, providers=list(providers or ["CPUExecutionProvider"])
            )
    names = [o.name for o in session.get_outputs()]
    run_options = ort.RunOptions()
    run_options.log_severity_level = 3
    out = []
    for feed in feeds:
        values = session.run(None, dict(feed), run_options)
        out.append(dict(zip(names, (np.asarray(v) for v in values), strict=False)))
    return out


@dataclass
class Reference:
    """The fp32 CPU-EP outputs of a model on an input set, computed once and reused."""

    inputs: InputSet
    outputs: list[dict[str, np.ndarray]]
    task: str
    target: Any = None  # the runtime Target, for the profile's pooling (None: bare model)
    model_sha256: str | None = None

    def save(self, path: str | Path) -> Path:
        """Inputs and outputs in one .npz (for a worker in another process)."""
        arrays: dict[str, np.ndarray] = {}
        for i, (feed, outs) in enumerate(zip(self.inputs.feeds, self.outputs, strict=True)):
            arrays.update({f"in/{i}/{k}": v for k, v in feed.items()})
            arrays.update({f"out/{i}/{k}": v for k, v in outs.items()})
        path = Path(path)
        np.savez(path, **arrays)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def load_sets(path: str | Path, prefix: str = "in") -> list[dict[str, np.ndarray]]:
    """The input (``in``) or output (``out``) sets of a file written by Reference.save."""
    sets: dict[int, dict[str, np.ndarray]] = {}
    with np.load(Path(path), allow_pickle=False) as data:
        for key in data.files:
            head, index, name = key.split("/", 2)
            if head == prefix:
                sets.setdefault(int(index), {})[name] = data[key]
    return [sets[i] for i in sorted(sets)]


def reference(target: Any, inputs: InputSet | None = None, *, n: int = MIN_INPUTS) -> Reference:
    """The fp32 reference: ``target``'s own model (its base, not a variant) on the CPU EP."""
    from aialliance_cli.tune.quantize import file_sha256

    path = Path(target.model_path)
    session = cpu_session(path)
    if inputs is None:
        inputs = profile_inputs(target, n, session=session)
    outputs = run_outputs(path, inputs.feeds, session=session)
    task = target.profile.task if target.profile is not None else "generic"
    return Reference(inputs, outputs, task, target, file_sha256(path))


# ----------------------------------------------------------------------------- compare


@dataclass
class Agreement:
    """How closely a candidate's outputs match the reference on the same inputs."""

    metric: str  # cosine | top1 | relative_error
    score: float  # mean cosine | top-1 agreement | 1 - worst relative error (nan: not finite)
    mean: float
    min: float
    samples: int
    task: str
    inputs: str  # kind of inputs (sentences | synthetic | random)
    outputs: dict[str, dict[str, float]] = field(default_factory=dict)
    min_accuracy: float | None = None  # the threshold it was judged by, when judged

    def passes(self, min_accuracy: float | None = None) -> bool:
        """True when ``score`` reaches ``min_accuracy`` (None: the task's default)."""
        threshold = default_min_accuracy(self.task) if min_accuracy is None else min_accuracy
        return math.isfinite(self.score) and self.score >= threshold - 1e-12

    def judged(self, min_accuracy: float | None = None) -> dict[str, Any]:
        """``to_dict`` plus the threshold and the verdict."""
        threshold = default_min_accuracy(self.task) if min_accuracy is None else min_accuracy
        return {**self.to_dict(), "min_accuracy": threshold, "passed": self.passes(threshold)}

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return round(float(x), 6) if math.isfinite(x) else None

        return {
            "metric": self.metric,
            "score": num(self.score),
            "mean": num(self.mean),
            "min": num(self.min),
            "samples": self.samples,
            "task": self.task,
            "inputs": self.inputs,
            "outputs": {
                k: {m: num(v) for m, v in vals.items()} for k, vals in self.outputs.items()
            },
        }

    def summary(self) -> str:
        if self.metric == "cosine":
            return f"cosine {self.mean:.4f} (min {self.min:.4f})"
        if self.metric == "top1":
            return f"top-1 agreement {self.score:.3f}"
        return f"max rel. error {1 - self.score:.2e}"


def compare(ref: Reference, outputs: Sequence[Mapping[str, np.ndarray]]) -> Agreement:
    """Judge ``outputs`` (one dict per input set of ``ref.inputs``) against the reference."""
    if len(outputs) != len(ref.outputs):
        raise ValueError(f"{len(outputs)} output sets for {len(ref.outputs)} reference sets")
    per_output = _errors(ref.outputs, outputs)
    if ref.task == "sentence-embedding" and ref.target is not None:
        cos = _embedding_cosines(ref, outputs)
        return _agreement("cosine", cos, ref, per_output, float(np.mean(cos)))
    if ref.task == "text-classification":
        agree = _top1(ref.outputs, outputs)
        return _agreement("top1", agree, ref, per_output, float(np.mean(agree)))
    worst = max((v["max_rel"] for v in per_output.values()), default=0.0)
    score = 1.0 - worst if math.isfinite(worst) else float("nan")
    rel = np.array([1.0 - v["max_rel"] for v in per_output.values()] or [1.0])
    return _agreement("relative_error", rel, ref, per_output, score)


def _agreement(
    metric: str, values: np.ndarray, ref: Reference, per_output: dict, score: float
) -> Agreement:
    values = np.asarray(values, dtype=np.float64)
    finite = bool(np.isfinite(values).all()) and math.isfinite(score)
    return Agreement(
        metric=metric,
        score=score if finite else float("nan"),
        mean=float(values.mean()) if finite else float("nan"),
        min=float(values.min()) if finite else float("nan"),
        samples=len(ref.outputs),
        task=ref.task,
        inputs=ref.inputs.kind,
        outputs=per_output,
    )


def _errors(
    refs: Sequence[Mapping[str, np.ndarray]], cands: Sequence[Mapping[str, np.ndarray]]
) -> dict[str, dict[str, float]]:
    """Per output: max absolute error, max error relative to the reference's largest magnitude."""
    out: dict[str, dict[str, float]] = {}
    for name in refs[0]:
        max_abs, scale, cos_min = 0.0, 0.0, 1.0
        for r, c in zip(refs, cands, strict=True):
            if name not in c:
                raise ModelError(f"the candidate has no output '{name}' (it has: {', '.join(c)})")
            a = np.asarray(r[name])
            b = np.asarray(c[name])
            if a.dtype.kind not in "fiub" or a.shape != b.shape:
                if a.shape != b.shape:
                    raise ModelError(
                        f"output '{name}' has shape {b.shape}, the reference {a.shape}"
                    )
                continue
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            if not np.isfinite(b64).all():
                max_abs = float("inf")
                cos_min = float("nan")
                continue
            if a64.size:
                max_abs = max(max_abs, float(np.abs(a64 - b64).max()))
                scale = max(scale, float(np.abs(a64).max()))
                cos_min = min(cos_min, _cosine(a64.ravel(), b64.ravel()))
        if max_abs == 0.0:
            rel = 0.0
        elif scale > 0:
            rel = max_abs / scale
        else:
            rel = float("inf")
        out[name] = {"max_abs": max_abs, "max_rel": rel, "cosine_min": cos_min}
    return out


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    if na == 0 or nb == 0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def _embedding_cosines(ref: Reference, outputs: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
    from aialliance_cli.runtime.api import _pooled_embedding

    cos = []
    for feed, r, c in zip(ref.inputs.feeds, ref.outputs, outputs, strict=True):
        er = _pooled_embedding(ref.target, dict(r), feed).astype(np.float64)
        ec = _pooled_embedding(ref.target, dict(c), feed).astype(np.float64)
        if not np.isfinite(ec).all():
            cos.append(float("nan"))
            continue
        for row_r, row_c in zip(er.reshape(len(er), -1), ec.reshape(len(ec), -1), strict=True):
            cos.append(_cosine(row_r, row_c))
    return np.array(cos)


def _top1(
    refs: Sequence[Mapping[str, np.ndarray]], cands: Sequence[Mapping[str, np.ndarray]]
) -> np.ndarray:
    name = next(iter(refs[0]))
    agree = []
    for r, c in zip(refs, cands, strict=True):
        a = np.asarray(r[name], dtype=np.float64)
        b = np.asarray(c[name], dtype=np.float64)
        a2, b2 = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        agree.extend((a2.argmax(-1) == b2.argmax(-1)).astype(float).tolist())
    return np.array(agree)


def check_model(
    ref: Reference, model_path: str | Path, *, providers: Sequence[Any] | None = None
) -> Agreement:
    """Run ``model_path`` on the reference's inputs (CPU EP unless ``providers``) and compare."""
    return compare(ref, run_outputs(model_path, ref.inputs.feeds, providers=providers))


# ----------------------------------------------------------------------------- sweeps

REFERENCE_EP = "CPUExecutionProvider"


def reference_record(ref: Reference, path: str | Path | None = None) -> dict[str, Any]:
    """What a result says about the reference it was compared with."""
    return {
        "ep": REFERENCE_EP,
        "precision": "fp32 (the target's own model)",
        "model": str(ref.target.model_path) if ref.target is not None else None,
        "model_sha256": ref.model_sha256,
        "inputs": ref.inputs.kind,
        "inputs_digest": ref.inputs.digest,
        "samples": len(ref.inputs.feeds),
        **({"file": str(path)} if path is not None else {}),
    }


class reference_for_jobs:  # noqa: N801 - used as a context manager, like tempfile's
    """``with reference_for_jobs(target, jobs): run them`` - every job checks its outputs.

    Computes the fp32 CPU-EP reference of ``target`` once, writes it to a
    temporary folder that the workers read (removed on exit) and adds
    ``check_outputs`` to each job dict, which the worker honours after measuring
    (:func:`check_job_outputs`).
    """

    def __init__(
        self,
        target: Any,
        jobs: Sequence[dict[str, Any]],
        *,
        min_accuracy: float | None = None,
        n: int = MIN_INPUTS,
        overrides: Any = None,
        status: Any = None,
    ) -> None:
        self.target, self.jobs, self.n = target, list(jobs), n
        self.min_accuracy = check_min_accuracy(min_accuracy)
        self.overrides, self.status = overrides, status
        self._tmp: Any = None
        self.reference: Reference | None = None

    def __enter__(self) -> reference_for_jobs:
        return self.compute()

    def compute(self) -> reference_for_jobs:
        """Compute the reference and point the jobs at it (once; ``with`` calls it too)."""
        import tempfile

        if self.reference is not None:
            return self
        if self.status is not None:
            self.status("computing the fp32 CPU reference outputs")
        session = cpu_session(Path(self.target.model_path))
        inputs = profile_inputs(self.target, self.n, overrides=self.overrides, session=session)
        ref = reference(self.target, inputs)
        self.reference = ref
        self._tmp = tempfile.TemporaryDirectory(prefix="aia-reference-")
        path = ref.save(Path(self._tmp.name) / "reference.npz")
        threshold = (
            default_min_accuracy(ref.task) if self.min_accuracy is None else self.min_accuracy
        )
        for job in self.jobs:
            job["check_outputs"] = {
                "path": str(path),
                "task": ref.task,
                "min_accuracy": threshold,
                "reference": reference_record(ref),
            }
        return self

    def __exit__(self, *exc: object) -> None:
        for job in self.jobs:
            job.pop("check_outputs", None)
        if self._tmp is not None:
            self._tmp.cleanup()


def check_job_outputs(check: Mapping[str, Any], session: Any, target: Any) -> dict[str, Any]:
    """In a worker: run the reference inputs through ``session`` and judge the outputs.

    Returns the result's ``agreement`` record; a check that cannot run (other
    input names, a crash) says so in ``error`` with ``passed`` None.
    """
    record: dict[str, Any] = {"reference": dict(check.get("reference") or {})}
    threshold = float(check.get("min_accuracy") or FALLBACK_MIN_ACCURACY)
    try:
        inputs = load_sets(check["path"], "in")
        ref_out = load_sets(check["path"], "out")
        kind = (check.get("reference") or {}).get("inputs", "synthetic")
        ref = Reference(
            InputSet(inputs, kind), ref_out, str(check.get("task") or "generic"), target
        )
        got = run_outputs(target.model_path, inputs, session=session)
        agreement = compare(ref, got)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return {
            **record,
            "error": f"the outputs could not be compared with the reference: {msg}",
            "min_accuracy": threshold,
            "passed": None,
        }
    return {**record, **agreement.judged(threshold)}


def agreement_warning(agreement: Mapping[str, Any] | None) -> str | None:
    """One line for a configuration whose outputs differ from the reference (None if fine)."""
    if not agreement:
        return None
    if agreement.get("error"):
        return str(agreement["error"])
    if agreement.get("passed") is False:
        score = agreement.get("score")
        shown = "not finite" if score is None else f"{score:.4f}"
        return (
            f"its outputs differ from the fp32 CPU reference ({agreement_text(agreement)}: "
            f"accuracy {shown}, below {agreement.get('min_accuracy')}); a speed-up here is not "
            "a like-for-like win"
        )
    return None


def agreement_text(agreement: Mapping[str, Any] | None) -> str:
    """``cosine 0.9935`` / ``top-1 0.938`` / ``rel.err 1.2e-03`` / ``error`` (for tables)."""
    if not agreement:
        return ""
    if agreement.get("error"):
        return "error"
    score = agreement.get("score")
    if score is None:
        return "not finite"
    metric = agreement.get("metric")
    if metric == "cosine":
        return f"cosine {score:.4f}"
    if metric == "top1":
        return f"top-1 {score:.3f}"
    return f"rel.err {max(0.0, 1 - score):.1e}"


# ----------------------------------------------------------------------------- aia run --ep A,B


@dataclass
class EpRun:
    """One EP's run of ``aia run --ep A,B`` and its agreement with the fp32 CPU run."""

    ep: str
    output: Any  # runtime.api.RunOutput
    agreement: dict[str, Any]


def run_eps(
    target: Any,
    overrides: Any,
    eps: Sequence[str],
    *,
    min_accuracy: float | None = None,
    status: Any = None,
    allow_network: bool = False,
) -> list[EpRun]:
    """Run ``target`` (a runtime Target) once per EP on the same inputs and compare each
    run's outputs with the target's own fp32 model on the CPU EP.

    Each EP must be in this environment's build (``strict``: a silent fallback to the
    CPU would agree with the reference and prove nothing).
    """
    from dataclasses import replace

    from aialliance_cli.runtime.api import run

    threshold = check_min_accuracy(min_accuracy)
    say = status or (lambda _m: None)
    say("running the fp32 model on the CPU EP for reference")
    base = run(target, replace(overrides, ep=REFERENCE_EP, variant=None, strict=True), status=say)
    task = target.profile.task if target.profile is not None else "generic"
    threshold = default_min_accuracy(task) if threshold is None else threshold
    ref = Reference(
        InputSet([base.prepared.feeds[0]], "run", dict(base.prepared.dims)),
        [base.outputs],
        task,
        target,
        None,
    )
    out = []
    for ep in eps:
        say(f"running on {ep}")
        try:
            got = run(
                target,
                replace(overrides, ep=ep, strict=True),
                status=say,
                allow_network=allow_network,
            )
        except UnavailableError as exc:
            from aialliance_cli.providers.catalogue import short_name

            names = ",".join(short_name(e) for e in eps)
            raise UnavailableError(
                f"{exc} aia run compares the EPs of this environment; `aia bench {target.name} "
                f"--ep {names} --check-outputs` compares them in registered "
                "environments too (aia env)."
            ) from exc
        try:
            agreement = {**compare(ref, [got.outputs]).judged(threshold)}
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            agreement = {
                "error": f"the outputs could not be compared with the reference: {msg}",
                "min_accuracy": threshold,
                "passed": None,
            }
        agreement["reference"] = {
            "ep": REFERENCE_EP,
            "precision": "fp32 (the target's own model)",
            "model": str(target.model_path),
            "inputs": "run",
            "inputs_digest": ref.inputs.digest,
            "samples": 1,
        }
        got.result.extra["agreement"] = agreement
        warning = agreement_warning(agreement)
        if warning:
            got.result.warnings.append(warning)
        out.append(EpRun(ep, got, agreement))
    return out
