"""The generation loop on ONNX Runtime, with the KV cache held between steps.

One prefill run feeds the whole prompt with an empty cache (past length 0);
then each step feeds one token per row and the previous step's ``present.*``
outputs as ``past_key_values.*``. The cache never leaves ONNX Runtime: outputs
are bound with IO binding and handed back as OrtValues, so on the CPU no cache
tensor is copied into numpy and back (``session.run`` would copy every cache
tensor out once per step), and on a GPU EP the cache stays in device memory.
Only the logits are read on the host.

Figures: ``ttft_s`` runs from the start of :meth:`Generator.generate` to the
first generated token (prefill plus one sampling); ``per_token_s`` holds one
latency per later token, so ``len(per_token_s) == n_generated - 1``;
``decode_s`` is their sum; ``e2e_s`` is the wall time of the whole call,
callbacks included (the per-token figures exclude the ``on_token`` callback).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aialliance_cli.errors import BadInputError, ModelError, RuntimeFailure
from aialliance_cli.genai import GenerationSpec, make_settings
from aialliance_cli.genai.export import DecoderFiles, DecoderInfo, check_decoder, locate_decoder
from aialliance_cli.genai.tokenizer import TextTokenizer, has_tokenizer, load_tokenizer

_DEVICE_OF_EP = {
    "CUDAExecutionProvider": "cuda",
    "TensorrtExecutionProvider": "cuda",
    "NvTensorRTRTXExecutionProvider": "cuda",
    "ROCMExecutionProvider": "cuda",  # ROCm builds name the HIP device "cuda"
    "DmlExecutionProvider": "dml",
}


@dataclass(frozen=True)
class TokenEvent:
    """What ``on_token`` receives after every generated token."""

    step: int  # 0 for the first generated token
    token_ids: tuple[int, ...]  # the new token of each batch row
    text: str  # new text of row 0 since the previous event ("" without a tokenizer)
    elapsed_s: float  # since generate() started


@dataclass(frozen=True)
class GenerationResult:
    """Generated ids and text per row, and the timing figures (see the module doc)."""

    token_ids: tuple[tuple[int, ...], ...]  # generated ids per batch row (EOS included)
    text: str  # row 0's text, stop string and special tokens left out
    texts: tuple[str, ...]
    batch: int
    n_prompt_tokens: int  # per row
    n_generated: int  # tokens per row (steps)
    ttft_s: float | None  # None when interrupted before the first token
    decode_s: float
    per_token_s: tuple[float, ...]
    e2e_s: float
    interrupted: bool
    stop_reason: str  # eos | stop_string | max_new_tokens | context | interrupted

    @property
    def prefill_tokens_per_s(self) -> float | None:
        if not self.ttft_s:
            return None
        return self.batch * self.n_prompt_tokens / self.ttft_s

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens per second after the first, all rows counted."""
        if not self.per_token_s or self.decode_s <= 0:
            return None
        return self.batch * len(self.per_token_s) / self.decode_s

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prefill_tokens_per_s"] = self.prefill_tokens_per_s
        d["decode_tokens_per_s"] = self.decode_tokens_per_s
        return d


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=-1, keepdims=True)


def next_tokens(logits: np.ndarray, settings: GenerationSpec, rng: np.random.Generator) -> Any:
    """Pick one token per row: argmax, or sampling after temperature, top-k, top-p.

    The filters apply in transformers' order (temperature, top-k, top-p).
    """
    if not settings.do_sample:
        # the array's own method: fewer calls than np.argmax, which counts on a cold cache
        return logits.argmax(axis=-1)
    x = logits.astype(np.float32, copy=False) / settings.temperature
    vocab = x.shape[-1]
    if 0 < settings.top_k < vocab:
        kth = np.partition(x, -settings.top_k, axis=-1)[:, -settings.top_k][:, None]
        x = np.where(x < kth, -np.inf, x)
    if settings.top_p < 1.0:
        order = np.argsort(-x, axis=-1)
        sorted_x = np.take_along_axis(x, order, axis=-1)
        probs = _softmax(sorted_x)
        # drop a token when the ones before it already reach top_p (the first always stays)
        drop = (np.cumsum(probs, axis=-1) - probs) >= settings.top_p
        sorted_x = np.where(drop, -np.inf, sorted_x)
        x = np.empty_like(x)
        np.put_along_axis(x, order, sorted_x, axis=-1)
    probs = _softmax(x.astype(np.float64))
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random((x.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=-1), vocab - 1)


def check_prompt(
    prompt_ids: Any, name: str, info: Any, max_new_tokens: int
) -> tuple[np.ndarray, int, int, int]:
    """``(ids, batch, n_prompt, limit)``: prompt ids as (batch, length) int64, checked
    against the decoder's context and vocabulary; ``limit``: how many new tokens fit."""
    ids = np.ascontiguousarray(prompt_ids, dtype=np.int64)
    if ids.ndim == 1:
        ids = ids[None, :]
    if ids.ndim != 2 or ids.shape[1] == 0 or ids.shape[0] == 0:
        raise BadInputError(
            f"prompt_ids must be (batch, length) with length >= 1, got {ids.shape}."
        )
    batch, n_prompt = ids.shape
    ctx = info.context_length
    if ctx is not None and n_prompt >= ctx:
        raise BadInputError(
            f"The prompt has {n_prompt} tokens but {name} takes at most {ctx} "
            "(its context length, max_position_embeddings), leaving no room to generate.",
            hint="Shorten the prompt.",
        )
    vocab = info.vocab_size
    if vocab is not None and (ids.min() < 0 or ids.max() >= vocab):
        raise BadInputError(f"prompt_ids hold ids outside the vocabulary [0, {vocab}).")
    limit = max_new_tokens if ctx is None else min(max_new_tokens, ctx - n_prompt)
    return ids, batch, n_prompt, limit


def make_result(
    generated: list[np.ndarray],
    texts: list[str],
    *,
    n_prompt: int,
    ttft: float | None,
    per_token: list[float],
    e2e: float,
    interrupted: bool,
    stop_reason: str,
) -> GenerationResult:
    """The :class:`GenerationResult` of a finished (or interrupted) loop; a row per text."""
    batch = len(texts)
    rows = np.stack(generated, axis=1) if generated else np.zeros((batch, 0), np.int64)
    return GenerationResult(
        token_ids=tuple(tuple(int(t) for t in row) for row in rows),
        text=texts[0],
        texts=tuple(texts),
        batch=batch,
        n_prompt_tokens=n_prompt,
        n_generated=len(generated),
        ttft_s=ttft,
        decode_s=float(sum(per_token)),
        per_token_s=tuple(per_token),
        e2e_s=e2e,
        interrupted=interrupted,
        stop_reason=stop_reason,
    )


class Generator:
    """Greedy or sampled generation with a KV cache on one ONNX Runtime session."""

    def __init__(
        self,
        session: Any,
        decoder_info: DecoderInfo | None = None,
        tokenizer: TextTokenizer | None = None,
        *,
        name: str = "model",
    ) -> None:
        self.session = session
        self.info = decoder_info or check_decoder(session, name=name)
        self.tokenizer = tokenizer
        self.name = name
        provider = session.get_providers()[0]
        self.provider = provider
        self.device = _DEVICE_OF_EP.get(provider, "cpu")
        # numpy type of the logits, for writing them straight into a host array (None: unknown)
        from aialliance_cli.genai.export import _ORT_TO_NUMPY

        types = {o.name: o.type for o in session.get_outputs()}
        self._logits_dtype = _ORT_TO_NUMPY.get(types.get(self.info.logits_name, ""))
        vocab = self.info.vocab_size
        if tokenizer is not None and vocab is not None and tokenizer.vocab_size > vocab:
            raise ModelError(
                f"The tokenizer in {tokenizer.folder} has {tokenizer.vocab_size} tokens but "
                f"{name} has only {vocab} (its logits): they are not the same model's, and "
                "ids past the model's vocabulary would crash or mislead.",
                hint="Keep the tokenizer saved with the model beside its model.onnx.",
            )
        self.eos_token_ids = frozenset(
            self.info.eos_token_ids + (tokenizer.eos_token_ids if tokenizer else ())
        )

    # --- input ------------------------------------------------------------------------------

    def encode(self, prompt: str, *, chat: bool = False) -> np.ndarray:
        """The prompt as a (1, length) int64 array (in the chat template when ``chat``)."""
        if self.tokenizer is None:
            raise ModelError(f"{self.name} has no tokenizer, so text prompts cannot be encoded.")
        text = self.tokenizer.chat_prompt(prompt) if chat else prompt
        ids = self.tokenizer.encode(text)
        if not ids:
            raise BadInputError(f"The prompt {prompt!r} encodes to no tokens.")
        return np.asarray([ids], dtype=np.int64)

    # --- the loop ----------------------------------------------------------------------------

    def _empty_past(self, batch: int, max_length: int = 0) -> list[Any]:
        """An empty cache; with a shared buffer, zeroed buffers of ``max_length`` positions."""
        import onnxruntime as ort

        length = max_length if self.info.share_buffer else 0
        shape = (batch, self.info.num_kv_heads, length, self.info.head_dim)
        if length:  # one zeroed array each: they are written in place
            return [
                ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, self.info.dtype), self.device, 0)
                for _ in self.info.present_names
            ]
        empty = np.zeros(shape, dtype=self.info.dtype)
        return [
            ort.OrtValue.ortvalue_from_numpy(empty, self.device, 0) for _ in self.info.present_names
        ]

    def _step(
        self,
        binding: Any,
        ids: np.ndarray,
        mask: np.ndarray,
        pos: np.ndarray,
        past: list[Any],
        first: bool = True,
        state: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, list[Any]]:
        info = self.info
        # With the in-place buffer the cache bindings never change: bind them at the prefill
        # only and rebind just the small inputs and the logits (about 4 calls per step
        # instead of 4 + 4 per layer; binding a name again replaces it).
        rebind_cache = not info.share_buffer or first
        if rebind_cache:
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
        binding.bind_cpu_input(info.input_ids_name, ids)
        if info.attention_mask_name:
            binding.bind_cpu_input(info.attention_mask_name, mask)
        if info.position_ids_name:
            binding.bind_cpu_input(info.position_ids_name, pos)
        if info.use_cache_branch_name:
            flag = np.array([past[0].shape()[2] > 0], dtype=bool)
            binding.bind_cpu_input(info.use_cache_branch_name, flag)
        if rebind_cache:
            for name, value in zip(info.past_names, past, strict=True):
                binding.bind_ortvalue_input(name, value)
        decode_logits = state.get("logits") if state is not None and not first else None
        prefill_logits = None
        if (
            first
            and info.share_buffer
            and state is not None
            and self.device == "cpu"
            and self._logits_dtype
            and info.vocab_size
        ):
            # ONNX Runtime writes the prompt's logits into this array: no copy of
            # (batch, prompt, vocab) floats out of an output value
            import onnxruntime as ort

            prefill_logits = np.empty((*ids.shape, info.vocab_size), dtype=self._logits_dtype)
            state["prefill_value"] = ort.OrtValue.ortvalue_from_numpy(prefill_logits)
            binding.bind_ortvalue_output(info.logits_name, state["prefill_value"])
        elif decode_logits is None:
            binding.bind_output(info.logits_name, "cpu")
        if info.share_buffer:  # GroupQueryAttention writes the new entries in place
            if first:
                for name, value in zip(info.present_names, past, strict=True):
                    binding.bind_ortvalue_output(name, value)
        else:
            for name in info.present_names:
                binding.bind_output(name, self.device)
        try:
            self.session.run_with_iobinding(binding)
        except Exception as exc:  # an EP failing mid-run: valid input, broken run
            if info.share_buffer and "shape" in str(exc).lower():
                raise ModelError(
                    f"{self.name}: genai_config.json sets search.past_present_share_buffer, but "
                    "the decoder does not write its cache in place (it has no "
                    f"GroupQueryAttention over a fixed-size buffer): {str(exc)[:300]}",
                    hint="Set search.past_present_share_buffer to false in genai_config.json, "
                    "or rebuild the model with ONNX Runtime GenAI's model builder.",
                ) from None
            raise RuntimeFailure(
                f"{self.name}: ONNX Runtime failed while generating: {exc}"
            ) from None
        if decode_logits is not None:
            return decode_logits[:, -1, :], past
        if prefill_logits is not None:
            logits = prefill_logits[:, -1, :]
            outs: list[Any] = []
        else:
            outs = binding.get_outputs()
            logits = outs[0].numpy()[:, -1, :]
        if info.share_buffer and state is not None and self.device == "cpu":
            # Decode steps write their (batch, 1, vocab) logits into one host array bound
            # once: no output objects to wrap per step, no allocation.
            import onnxruntime as ort

            buf = np.empty((logits.shape[0], 1, logits.shape[-1]), dtype=logits.dtype)
            state["logits"] = buf
            state["logits_value"] = ort.OrtValue.ortvalue_from_numpy(buf)
            binding.bind_ortvalue_output(info.logits_name, state["logits_value"])
        return logits, (past if info.share_buffer else list(outs[1:]))

    def prompt_logits(self, prompt_ids: Any) -> np.ndarray:
        """Logits at every position of ``prompt_ids`` (batch, length, vocab): one prefill run."""
        ids = np.ascontiguousarray(prompt_ids, dtype=np.int64)
        if ids.ndim == 1:
            ids = ids[None, :]
        batch, n = ids.shape
        info = self.info
        binding = self.session.io_binding()
        past = self._empty_past(batch, n)
        binding.bind_cpu_input(info.input_ids_name, ids)
        if info.attention_mask_name:
            binding.bind_cpu_input(info.attention_mask_name, np.ones((batch, n), np.int64))
        if info.position_ids_name:
            pos = np.ascontiguousarray(np.broadcast_to(np.arange(n, dtype=np.int64), (batch, n)))
            binding.bind_cpu_input(info.position_ids_name, pos)
        if info.use_cache_branch_name:
            binding.bind_cpu_input(info.use_cache_branch_name, np.array([False]))
        for name, value in zip(info.past_names, past, strict=True):
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(info.logits_name, "cpu")
        for name, value in zip(info.present_names, past, strict=True):
            if info.share_buffer:
                binding.bind_ortvalue_output(name, value)
            else:
                binding.bind_output(name, self.device)
        try:
            self.session.run_with_iobinding(binding)
        except Exception as exc:
            raise RuntimeFailure(f"{self.name}: ONNX Runtime failed on the prompt: {exc}") from None
        return binding.get_outputs()[0].numpy()

    def generate(
        self,
        prompt_ids: Any,
        settings: GenerationSpec | Mapping[str, Any] | None = None,
        on_token: Callable[[TokenEvent], None] | None = None,
        *,
        ignore_eos: bool = False,
        decode_text: bool = True,
    ) -> GenerationResult:
        """Generate up to ``settings.max_new_tokens`` tokens after ``prompt_ids`` (batch, len).

        Stops at EOS (unless ``ignore_eos``), a stop string, or the context
        length. Ctrl-C (KeyboardInterrupt, also from ``on_token``) returns the
        partial result with ``interrupted=True``. ``decode_text=False`` skips
        detokenizing (benchmarks); stop strings then never match.
        """
        if not isinstance(settings, GenerationSpec):
            settings = make_settings(settings)
        ids, batch, n_prompt, limit = check_prompt(
            prompt_ids, self.name, self.info, settings.max_new_tokens
        )
        info = self.info
        rng = np.random.default_rng(settings.seed)
        eos = np.array(sorted(self.eos_token_ids), dtype=np.int64)
        eos_set = frozenset() if ignore_eos else self.eos_token_ids
        pad = int(eos[0]) if eos.size else 0

        t0 = time.perf_counter()
        generated: list[np.ndarray] = []
        per_token: list[float] = []
        ttft: float | None = None
        finished = np.zeros(batch, dtype=bool)
        any_finished = False
        texts = [""] * batch
        emitted = 0
        stop_reason = "max_new_tokens"
        interrupted = False
        decode_text = decode_text and self.tokenizer is not None
        live_text = decode_text and (on_token is not None or bool(settings.stop))
        try:
            binding = self.session.io_binding()
            state: dict[str, Any] = {}
            past = self._empty_past(batch, n_prompt + limit)
            mask = np.ones((batch, n_prompt), dtype=np.int64)
            pos = np.broadcast_to(np.arange(n_prompt, dtype=np.int64), (batch, n_prompt))
            step_ids = ids
            t_step = t0
            host = info.share_buffer and self.device == "cpu"
            inplace: _InPlaceDecode | None = None
            for step in range(limit):
                if inplace is not None:
                    logits = inplace.step(n_prompt + step - 1)
                else:
                    logits, past = self._step(
                        binding, step_ids, mask, np.ascontiguousarray(pos), past, step == 0, state
                    )
                    if host and "logits" in state:  # prefill done: decode steps in place
                        inplace = _InPlaceDecode(
                            self, binding, state["logits"], n_prompt, n_prompt + limit
                        )
                # As few numpy calls per step as possible: after each run the CPU caches hold
                # the weights, and every distinct call costs tens of microseconds cold.
                token = next_tokens(logits, settings, rng)
                if token.dtype != np.int64:
                    token = token.astype(np.int64)
                if any_finished:
                    token = np.where(finished, pad, token)
                generated.append(token)
                now = time.perf_counter()
                if step == 0:
                    ttft = now - t0
                else:
                    per_token.append(now - t_step)
                if eos_set and not eos_set.isdisjoint(token.tolist()):
                    finished |= np.isin(token, eos)
                    any_finished = True
                stop_hit = False
                if live_text:  # decoding every step is only needed to stream or find stops
                    stop_hit = self._update_texts(generated, texts, settings.stop, finished)
                    any_finished = any_finished or stop_hit
                if on_token is not None:
                    delta = texts[0][emitted:]
                    if delta.endswith("\ufffd"):  # half of a multi-byte character: wait
                        delta = delta.rstrip("\ufffd")
                    emitted += len(delta)
                    on_token(TokenEvent(step, tuple(int(t) for t in token), delta, now - t0))
                if any_finished and finished.all():
                    stop_reason = "stop_string" if stop_hit else "eos"
                    break
                t_step = time.perf_counter()
                if inplace is not None:
                    inplace.ids[:, 0] = token
                    continue
                step_ids = token[:, None]
                past_len = n_prompt + step
                mask = np.ones((batch, past_len + 1), dtype=np.int64)
                pos = np.full((batch, 1), past_len, dtype=np.int64)
            else:
                if limit < settings.max_new_tokens:
                    stop_reason = "context"
        except KeyboardInterrupt:
            interrupted = True
            stop_reason = "interrupted"
        e2e = time.perf_counter() - t0
        if decode_text and generated:
            self._update_texts(generated, texts, settings.stop, finished.copy())
        return make_result(
            generated,
            texts,
            n_prompt=n_prompt,
            ttft=ttft,
            per_token=per_token,
            e2e=e2e,
            interrupted=interrupted,
            stop_reason=stop_reason,
        )

    def _update_texts(
        self,
        generated: list[np.ndarray],
        texts: list[str],
        stops: tuple[str, ...],
        finished: np.ndarray,
    ) -> bool:
        """Decode each unfinished row; cut at a stop string and finish that row."""
        if self.tokenizer is None:
            return False
        hit = False
        for row in range(len(texts)):
            if finished[row] and texts[row] and not stops:
                continue
            text = self.tokenizer.decode([int(g[row]) for g in generated])
            for stop in stops:
                at = text.find(stop)
                if at >= 0:
                    text = text[:at]
                    finished[row] = True
                    hit = True
            texts[row] = text
        return hit


class _InPlaceDecode:
    """Decode steps on the host with the in-place cache: nothing bound or allocated per step.

    After the prefill every binding stays put: the cache buffers (written in place by
    GroupQueryAttention), the logits array, and the new tokens, positions and attention
    mask, which live in arrays bound once by address and rewritten before each run.
    The mask has the cache buffer's full length (ones for the tokens so far, zeros
    after): GroupQueryAttention reads each row's length from the mask's sum and
    attends to that many positions only, so the result is the same as with a mask as
    long as the sequence, and the shapes never change (no new binding per step).
    """

    def __init__(
        self, gen: Generator, binding: Any, logits: np.ndarray, n_prompt: int, max_len: int
    ) -> None:
        info = gen.info
        self.run = gen.session.run_with_iobinding
        self.binding = binding
        self.logits = logits[:, -1, :]
        batch = logits.shape[0]
        self.ids = np.empty((batch, 1), dtype=np.int64)
        binding.bind_input(info.input_ids_name, "cpu", 0, np.int64, self.ids.shape, _addr(self.ids))
        self.pos: np.ndarray | None = None
        if info.position_ids_name:
            self.pos = np.empty((batch, 1), dtype=np.int64)
            binding.bind_input(
                info.position_ids_name, "cpu", 0, np.int64, self.pos.shape, _addr(self.pos)
            )
        if info.use_cache_branch_name:
            self.flag = np.ones(1, dtype=bool)
            name = info.use_cache_branch_name
            binding.bind_input(name, "cpu", 0, np.bool_, (1,), _addr(self.flag))
        self.mask: np.ndarray | None = None
        if info.attention_mask_name:
            self.mask = np.zeros((batch, max_len), dtype=np.int64)
            self.mask[:, :n_prompt] = 1
            binding.bind_input(
                info.attention_mask_name, "cpu", 0, np.int64, self.mask.shape, _addr(self.mask)
            )
        self.name = gen.name

    def step(self, past_len: int) -> np.ndarray:
        """Run the tokens in ``ids`` at position ``past_len``; their logits (batch, vocab)."""
        if self.pos is not None:
            self.pos.fill(past_len)
        if self.mask is not None:
            self.mask[:, past_len] = 1
        try:
            self.run(self.binding)
        except Exception as exc:  # an EP failing mid-run: valid input, broken run
            raise RuntimeFailure(
                f"{self.name}: ONNX Runtime failed while generating: {exc}"
            ) from None
        return self.logits


def _addr(a: np.ndarray) -> int:
    return int(a.ctypes.data)


def load_generator(
    model: str | Path,
    *,
    session: Any = None,
    providers: list[Any] | None = None,
    tokenizer_dir: str | Path | None = None,
    require_tokenizer: bool = True,
) -> Generator:
    """A Generator for a decoder folder or file (optimum export or ONNX Runtime GenAI).

    ``session`` may be one built by aia's session builder on the chosen EP;
    otherwise a CPU session is made. The tokenizer comes from ``tokenizer_dir``
    or the model's folder.
    """
    files: DecoderFiles = locate_decoder(model)
    name = str(files.model_path)
    if session is None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.enable_mem_pattern = False  # new shapes at every step (SessionSpec.mem_pattern)
        try:
            session = ort.InferenceSession(
                str(files.model_path), so, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelError(f"ONNX Runtime cannot load {name}: {exc}") from None
    # inspect the session, not the file: no second parse of a large model
    info = check_decoder(session, files, name=name)
    tok_dir = Path(tokenizer_dir) if tokenizer_dir else files.folder
    tokenizer = None
    if require_tokenizer or has_tokenizer(tok_dir):
        tokenizer = load_tokenizer(tok_dir, extra_eos=info.eos_token_ids)
    return Generator(session, info, tokenizer, name=name)
