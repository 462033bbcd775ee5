"""How far a quantized decoder (int4, int8) strays from its fp32 build.

Two figures, both on aia's own loop and the CPU EP, on fixed inputs so that they
compare across machines and runs:

- ``greedy_agreement``: the fp32 model generates ``max_new_tokens`` greedy tokens
  after each of :data:`PROMPTS`; the candidate reads the same sequence (teacher
  forcing) and the figure is the share of those positions where its greedy choice
  is the fp32 token. Every position is judged on the same context, so one early
  difference does not count twice. ``exact_match`` is the share of prompts whose
  free-running greedy continuation is identical in both models.
- ``loglik_delta``: mean log-likelihood per token of :data:`REFERENCE_TEXT` under
  the candidate minus under fp32 (nats; 0 is no loss, negative is worse), with both
  means and perplexities.

Entry point for other packages (``aia tune``): :func:`accuracy_vs_reference`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aialliance_cli.errors import BadInputError

__all__ = ["PROMPTS", "REFERENCE_TEXT", "AccuracyReport", "accuracy_vs_reference"]

PROMPTS: tuple[str, ...] = (
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def fibonacci(n):",
    "The three primary colours are",
)
REFERENCE_TEXT = (
    "The quick brown fox jumps over the lazy dog. A language model reads text one token at a "
    "time and predicts the next one. Quantizing its weights to four bits makes it smaller and "
    "faster, and the question is how much of its judgement survives."
)


@dataclass(frozen=True)
class AccuracyReport:
    """The candidate's agreement with the fp32 reference (see the module doc)."""

    greedy_agreement: float  # 0..1, teacher-forced on fp32's greedy tokens
    exact_match: float  # 0..1, prompts whose free-running continuation is identical
    loglik_reference: float  # mean log-likelihood per token of REFERENCE_TEXT, fp32
    loglik_candidate: float
    loglik_delta: float  # candidate - reference (nats per token; negative = worse)
    perplexity_reference: float
    perplexity_candidate: float
    n_prompts: int
    max_new_tokens: int
    n_reference_tokens: int
    reference: str
    candidate: str
    per_prompt_agreement: tuple[float, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["per_prompt_agreement"] = list(self.per_prompt_agreement)
        return d


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _mean_loglik(gen: Any, ids: np.ndarray) -> float:
    logp = _log_softmax(gen.prompt_logits(ids)[0, :-1])
    return float(logp[np.arange(ids.shape[1] - 1), ids[0, 1:]].mean())


def _load(model: Any, tokenizer_dir: Any, threads: int | None) -> Any:
    from aialliance_cli.genai.generate import Generator, load_generator

    if isinstance(model, Generator):
        return model
    import onnxruntime as ort

    from aialliance_cli.genai.export import locate_decoder

    so = ort.SessionOptions()
    so.enable_mem_pattern = False  # a prompt length per run: no pattern is ever replayed
    if threads:
        so.intra_op_num_threads = threads
    files = locate_decoder(model)
    session = ort.InferenceSession(str(files.model_path), so, providers=["CPUExecutionProvider"])
    return load_generator(files.folder, session=session, tokenizer_dir=tokenizer_dir)


def accuracy_vs_reference(
    reference: str | Path | Any,
    candidate: str | Path | Any,
    *,
    prompts: tuple[str, ...] = PROMPTS,
    max_new_tokens: int = 16,
    reference_text: str = REFERENCE_TEXT,
    tokenizer_dir: str | Path | None = None,
    threads: int | None = None,
) -> AccuracyReport:
    """Accuracy figures of ``candidate`` against ``reference`` (fp32), both decoder folders.

    Either may also be a loaded :class:`~aialliance_cli.genai.generate.Generator`.
    The tokenizer is the reference's (or ``tokenizer_dir``'s); EOS is ignored so
    that every prompt yields ``max_new_tokens`` positions.
    """
    from aialliance_cli.genai import make_settings

    if not prompts or max_new_tokens < 1:
        raise BadInputError("accuracy needs at least one prompt and max_new_tokens >= 1")
    ref = _load(reference, tokenizer_dir, threads)
    cand = _load(
        candidate, tokenizer_dir or (ref.tokenizer.folder if ref.tokenizer else None), threads
    )
    settings = make_settings(max_new_tokens=max_new_tokens)
    agreements: list[float] = []
    exact = 0
    for text in prompts:
        ids = ref.encode(text)
        r = ref.generate(ids, settings, ignore_eos=True, decode_text=False)
        c = cand.generate(ids, settings, ignore_eos=True, decode_text=False)
        exact += int(r.token_ids[0] == c.token_ids[0])
        seq = np.concatenate([ids, np.asarray([r.token_ids[0]], dtype=np.int64)], axis=1)
        logits = cand.prompt_logits(seq[:, :-1])[0]
        n = ids.shape[1]
        picks = np.argmax(logits[n - 1 :], axis=-1)
        agreements.append(float(np.mean(picks == np.asarray(r.token_ids[0]))))
    ref_ids = ref.encode(reference_text)
    if ref_ids.shape[1] < 2:
        raise BadInputError("the reference text must encode to at least two tokens")
    ll_ref = _mean_loglik(ref, ref_ids)
    ll_cand = _mean_loglik(cand, ref_ids)
    return AccuracyReport(
        greedy_agreement=float(np.mean(agreements)),
        exact_match=exact / len(prompts),
        loglik_reference=ll_ref,
        loglik_candidate=ll_cand,
        loglik_delta=ll_cand - ll_ref,
        perplexity_reference=float(np.exp(-ll_ref)),
        perplexity_candidate=float(np.exp(-ll_cand)),
        n_prompts=len(prompts),
        max_new_tokens=max_new_tokens,
        n_reference_tokens=int(ref_ids.shape[1]),
        reference=str(ref.name),
        candidate=str(cand.name),
        per_prompt_agreement=tuple(agreements),
    )
