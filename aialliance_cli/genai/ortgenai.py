"""ONNX Runtime GenAI's generator behind aia's generation interface (``--engine genai``).

:class:`GenAIEngine` offers what :class:`aialliance_cli.genai.generate.Generator`
offers (``info``, ``tokenizer``, ``encode``, ``generate``), so ``aia run`` and
``aia bench`` measure both engines with the same code and the same figures: the
clock starts before the prompt is appended (GenAI runs the prefill there), the
first token's time is TTFT, and each later token's interval is one decode step.

Threads and spinning are set explicitly in the decoder's ``session_options``
through a config overlay (``intra_op_num_threads``, ``inter_op_num_threads``,
``session.intra_op.allow_spinning``): GenAI's own default is one thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aialliance_cli.errors import BadInputError, ModelError, RuntimeFailure
from aialliance_cli.genai import GenerationSpec, make_settings
from aialliance_cli.genai.export import DecoderInfo, check_decoder, locate_decoder
from aialliance_cli.genai.generate import (
    GenerationResult,
    TokenEvent,
    check_prompt,
    make_result,
)
from aialliance_cli.genai.tokenizer import TextTokenizer, has_tokenizer, load_tokenizer

# aia's EP names -> GenAI's provider names (CPU: no provider appended)
_PROVIDER = {
    "CUDAExecutionProvider": "cuda",
    "DmlExecutionProvider": "dml",
    "OpenVINOExecutionProvider": "OpenVINO",
    "QNNExecutionProvider": "QNN",
    "WebGpuExecutionProvider": "WebGPU",
    "NvTensorRTRTXExecutionProvider": "NvTensorRtRtx",
}


def genai_available() -> bool:
    """True when the ``onnxruntime_genai`` module can be found (not imported)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime_genai") is not None


def session_overlay(
    *, intra_op_threads: int = 0, inter_op_threads: int = 0, spinning: bool | None = None
) -> dict[str, Any]:
    """The genai_config.json fragment that sets the decoder's threads and spinning."""
    so: dict[str, Any] = {}
    if intra_op_threads:
        so["intra_op_num_threads"] = int(intra_op_threads)
    if inter_op_threads:
        so["inter_op_num_threads"] = int(inter_op_threads)
    if spinning is not None:
        flag = "1" if spinning else "0"
        so["session.intra_op.allow_spinning"] = flag
        so["session.inter_op.allow_spinning"] = flag
    return {"model": {"decoder": {"session_options": so}}}


class GenAIEngine:
    """Greedy or sampled generation with ONNX Runtime GenAI's ``Generator``."""

    def __init__(
        self,
        folder: str | Path,
        *,
        ep: str = "CPUExecutionProvider",
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        spinning: bool | None = None,
        tokenizer: TextTokenizer | None = None,
        require_tokenizer: bool = True,
    ) -> None:
        try:
            import onnxruntime_genai as og
        except ImportError:
            raise ModelError(
                "--engine genai needs ONNX Runtime GenAI (onnxruntime-genai), not installed.",
                hint="pip install 'aialliance-cli[genai]'",
            ) from None
        files = locate_decoder(folder)
        if files.layout != "genai":
            raise BadInputError(
                f"--engine genai needs a model with genai_config.json (made by ONNX Runtime "
                f"GenAI's model builder); {files.folder} is an {files.layout} export.",
                hint="Use --exporter builder (or auto, with the builder available), or "
                "--engine aia.",
            )
        self.og = og
        self.files = files
        self.name = str(files.model_path)
        self.provider = ep
        self.overlay = session_overlay(
            intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads, spinning=spinning
        )
        try:
            config = og.Config(str(files.folder))
            config.clear_providers()
            if ep in _PROVIDER:
                config.append_provider(_PROVIDER[ep])
            elif ep != "CPUExecutionProvider":
                raise BadInputError(
                    f"--engine genai cannot run on {ep}; GenAI offers CPU, "
                    f"{', '.join(sorted(_PROVIDER))}"
                )
            config.overlay(json.dumps(self.overlay))
            self.model = og.Model(config)
        except BadInputError:
            raise
        except Exception as exc:
            raise ModelError(f"ONNX Runtime GenAI cannot load {files.folder}: {exc}") from None
        self.info: DecoderInfo = check_decoder(files.model_path, files, name=self.name)
        if tokenizer is None and (require_tokenizer or has_tokenizer(files.folder)):
            tokenizer = load_tokenizer(files.folder, extra_eos=self.info.eos_token_ids)
        self.tokenizer = tokenizer
        self.eos_token_ids = frozenset(
            self.info.eos_token_ids + (tokenizer.eos_token_ids if tokenizer else ())
        )

    def encode(self, prompt: str, *, chat: bool = False) -> np.ndarray:
        if self.tokenizer is None:
            raise ModelError(f"{self.name} has no tokenizer, so text prompts cannot be encoded.")
        text = self.tokenizer.chat_prompt(prompt) if chat else prompt
        ids = self.tokenizer.encode(text)
        if not ids:
            raise BadInputError(f"The prompt {prompt!r} encodes to no tokens.")
        return np.asarray([ids], dtype=np.int64)

    def generate(
        self,
        prompt_ids: Any,
        settings: GenerationSpec | Mapping[str, Any] | None = None,
        on_token: Callable[[TokenEvent], None] | None = None,
        *,
        ignore_eos: bool = False,
        decode_text: bool = True,
    ) -> GenerationResult:
        """Generate as :meth:`Generator.generate` does, with GenAI doing the steps."""
        if not isinstance(settings, GenerationSpec):
            settings = make_settings(settings)
        ids, batch, n_prompt, limit = check_prompt(
            prompt_ids, self.name, self.info, settings.max_new_tokens
        )
        og = self.og
        search: dict[str, Any] = {
            "max_length": n_prompt + limit,
            "batch_size": batch,
            "do_sample": settings.do_sample,
        }
        if ignore_eos:
            search["min_length"] = n_prompt + limit
        if settings.do_sample:
            search.update(
                temperature=settings.temperature,
                top_k=settings.top_k or 0,
                top_p=settings.top_p,
            )
            if settings.seed is not None:
                search["random_seed"] = settings.seed
        eos = self.eos_token_ids
        decode_text = decode_text and self.tokenizer is not None
        live_text = decode_text and (on_token is not None or bool(settings.stop))
        generated: list[np.ndarray] = []
        per_token: list[float] = []
        ttft: float | None = None
        texts = [""] * batch
        emitted = 0
        stop_reason = "max_new_tokens"
        interrupted = False
        finished = np.zeros(batch, dtype=bool)
        t0 = time.perf_counter()
        try:
            params = og.GeneratorParams(self.model)
            params.set_search_options(**search)
            gen = og.Generator(self.model, params)
            gen.append_tokens(ids.astype(np.int32))
            t_step = t0
            for step in range(limit):
                if gen.is_done():
                    stop_reason = "eos"
                    break
                gen.generate_next_token()
                token = np.asarray(gen.get_next_tokens(), dtype=np.int64).reshape(batch)
                now = time.perf_counter()
                if step == 0:
                    ttft = now - t0
                else:
                    per_token.append(now - t_step)
                token = np.where(finished, next(iter(sorted(eos)), 0), token)
                generated.append(token)
                if not ignore_eos and eos:
                    finished |= np.isin(token, list(eos))
                stop_hit = False
                if live_text:
                    stop_hit = self._update_texts(generated, texts, settings.stop, finished)
                if on_token is not None:
                    delta = texts[0][emitted:].rstrip("\ufffd")
                    emitted += len(delta)
                    on_token(TokenEvent(step, tuple(int(t) for t in token), delta, now - t0))
                if finished.all():
                    stop_reason = "stop_string" if stop_hit else "eos"
                    break
                t_step = time.perf_counter()
            else:
                if limit < settings.max_new_tokens:
                    stop_reason = "context"
        except KeyboardInterrupt:
            interrupted = True
            stop_reason = "interrupted"
        except (BadInputError, ModelError):
            raise
        except Exception as exc:
            raise RuntimeFailure(
                f"{self.name}: ONNX Runtime GenAI failed while generating: {exc}"
            ) from None
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
        self, generated: list[np.ndarray], texts: list[str], stops: Any, finished: np.ndarray
    ) -> bool:
        from aialliance_cli.genai.generate import Generator

        return Generator._update_texts(self, generated, texts, stops, finished)  # type: ignore[arg-type]
