"""`aia run` and `aia bench` for text-generation profiles: the glue between profiles,
the EP plan, the session builder and aialliance_cli.genai (export, KV-cache loop, bench)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aialliance_cli.errors import BadInputError
from aialliance_cli.results.schema import Result
from aialliance_cli.runtime import memory
from aialliance_cli.runtime.api import (
    Overrides,
    Target,
    _ep_record,
    _ort_record,
    choose_session,
)

Status = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def is_text_generation(target: str | None) -> bool:
    """True when ``target`` names a profile of task text-generation (cheap: no model work)."""
    if target is None or target.lower().endswith((".onnx", ".ort")):
        return False
    try:
        from aialliance_cli.profiles import load_profile

        return load_profile(target).profile.task == "text-generation"
    except Exception:  # the regular path reports bad profiles with its own messages
        return False


@dataclass
class GenPrepared:
    target: Target
    generator: Any  # genai.generate.Generator
    built: Any  # runtime.session.BuiltSession
    spec: Any  # genai.GenerationSpec
    random_weights: bool
    inventory: Any
    plan: Any
    choice: Any
    warnings: list[str]
    placement: Any = None
    feeds: Any = ()
    dims: Any = None
    export: Any = None  # genai.builder.ExportOutcome: which exporter made the decoder
    engine: str = "aia"
    spinning: bool = True
    source: Any = None  # the transformers folder or hub id the decoder was made from
    allow_network: bool = False


@dataclass
class EngineSession:
    """What results record of the session when ONNX Runtime GenAI builds it (--engine genai)."""

    spec: Any  # the SessionSpec aia chose (EP, threads); GenAI gets the same through its config
    ep: str
    options: dict[str, Any]
    providers: tuple[str, ...]
    fallbacks: list[Any]
    session: Any = None

    def fallback_warnings(self) -> list[str]:
        return []


@dataclass(frozen=True)
class GenOptions:
    """Command-line choices for generation (None: the profile's generation: section)."""

    engine: str | None = None  # aia | genai
    precision: str | None = None  # fp32 | fp16 | bf16 | int4 | int8
    exporter: str | None = None  # auto | builder | optimum


def prepare_generation(
    target: str,
    ov: Overrides,
    *,
    random_weights: bool = False,
    allow_network: bool = False,
    status: Status = _quiet,
    options: GenOptions | None = None,
) -> GenPrepared:
    """Resolve (build or export) the decoder, plan the EP, build the session, load the engine.

    Threads and spinning are always set explicitly: ``--threads`` or the profile's
    ``session.intra_op_threads``, else the physical core count; spinning from
    ``generation.spinning`` (default on). Both engines get the same values.
    """
    from aialliance_cli.genai import make_settings
    from aialliance_cli.genai.builder import ExportOutcome, builder_ep, export_decoder
    from aialliance_cli.genai.export import locate_decoder
    from aialliance_cli.genai.generate import load_generator
    from aialliance_cli.genai.tiny import architecture_for, build_random_causal_lm
    from aialliance_cli.hardware import detect
    from aialliance_cli.profiles import load_profile
    from aialliance_cli.runtime.session import build_session

    loaded = load_profile(target)
    prof = loaded.profile
    opts = options or GenOptions()
    spec = make_settings(
        prof.generation,
        source=f"profile {loaded.path}",
        engine=opts.engine,
        precision=opts.precision,
        exporter=opts.exporter,
    )
    m = prof.model
    export: Any = None
    source: Any = None
    if m.huggingface is not None:
        hf = m.huggingface
        if random_weights:
            status("building the architecture with random weights")
            source = build_random_causal_lm(architecture_for(hf.id, spec.architecture))
        elif hf.id is not None:
            source = hf.id
        elif hf.path is not None:
            source = loaded.resolve(hf.path)
        else:
            from aialliance_cli.models.sources import package_dir

            source = package_dir(hf.package.name) / (hf.package.path or "")
        export = export_decoder(
            source,
            exporter=spec.exporter,
            precision=spec.precision,
            execution_provider=builder_ep(_ep_name(ov.ep)),
            block_size=spec.block_size,
            accuracy_level=spec.accuracy_level,
            revision=hf.revision or "main",
            opset=hf.opset,
            allow_download=allow_network,
            allow_install=allow_network,
            progress=status,
        )
        folder = export.folder
    elif m.file is not None:
        if random_weights:
            raise BadInputError(
                f"--random-weights needs a Hugging Face model in {loaded.path}; this profile "
                "names an ONNX file, whose weights are already there"
            )
        folder = loaded.resolve(m.file)
        if opts.precision not in (None, "fp32") or opts.exporter not in (None, "auto"):
            raise BadInputError(
                f"--precision and --exporter need a Hugging Face model in {loaded.path}; this "
                "profile names an ONNX decoder, used as it is"
            )
    else:
        raise BadInputError(
            f"profile {loaded.path}: a text-generation model must be model.huggingface "
            "(exported with its KV cache) or model.file (an ONNX decoder or its folder)"
        )
    files = locate_decoder(folder)
    if export is None:
        export = ExportOutcome(files.folder, "given", spec.precision)
    tgt = Target(
        name=prof.name,
        model_path=files.model_path,
        loaded=loaded,
        tokenizer_dir=files.folder,
        model_info={
            "path": str(files.model_path),
            "layout": files.layout,
            "random_weights": random_weights,
            "exporter": export.exporter,
            "precision": export.precision,
            "block_size": export.block_size,
            "accuracy_level": export.accuracy_level,
        },
    )
    inventory = detect()
    sess_spec, (the_plan, choice, warnings) = choose_session(tgt, ov, inventory)
    warnings = [*export.warnings, *warnings]
    threads = sess_spec.intra_op_threads or _default_threads(inventory)
    sess_spec = decoder_session_spec(sess_spec, threads, spec.spinning)
    if spec.engine == "genai":
        from aialliance_cli.genai.ortgenai import GenAIEngine

        status(f"loading the model in ONNX Runtime GenAI on {sess_spec.ep}")
        generator: Any = GenAIEngine(
            files.folder,
            ep=sess_spec.ep,
            intra_op_threads=threads,
            inter_op_threads=sess_spec.inter_op_threads,
            spinning=spec.spinning,
        )
        built: Any = EngineSession(
            sess_spec,
            sess_spec.ep,
            dict(sess_spec.options),
            (sess_spec.ep,),
            [],
        )
    else:
        status(f"building the session on {sess_spec.ep}")
        built = build_session(files.model_path, sess_spec)
        warnings.extend(built.fallback_warnings())
        generator = load_generator(files.folder, session=built.session)
    return GenPrepared(
        tgt,
        generator,
        built,
        spec,
        random_weights,
        inventory,
        the_plan,
        choice,
        warnings,
        export=export,
        engine=spec.engine,
        spinning=spec.spinning,
        source=source if m.huggingface is not None else None,
        allow_network=allow_network,
    )


def decoder_session_spec(spec: Any, threads: int, spinning: bool) -> Any:
    """The session a decoder runs on: threads and spinning explicit, no memory pattern.

    ``spec`` is a :class:`aialliance_cli.runtime.session.SessionSpec`; the memory
    pattern is off because a decoder's input shapes change at every step (see
    ``SessionSpec.mem_pattern``).
    """
    import dataclasses

    spin = "1" if spinning else "0"
    return dataclasses.replace(
        spec,
        intra_op_threads=threads,
        mem_pattern=False,
        config={
            **spec.config,
            "session.intra_op.allow_spinning": spin,
            "session.inter_op.allow_spinning": spin,
        },
    )


def _ep_name(ep: str | None) -> str | None:
    if not ep:
        return None
    from aialliance_cli.providers.catalogue import resolve_ep_name

    return resolve_ep_name(ep)


def _default_threads(inventory: Any) -> int:
    cpu = getattr(inventory, "cpu", None)
    return int(getattr(cpu, "physical_cores", None) or getattr(cpu, "logical_cores", None) or 1)


def _settings(p: GenPrepared, extra: dict[str, Any]) -> dict[str, Any]:
    s = p.built.spec
    return {
        "intra_op_threads": s.intra_op_threads,
        "inter_op_threads": s.inter_op_threads,
        "graph_optimization_level": s.graph_optimization_level,
        "execution_mode": s.execution_mode,
        "allow_spinning": p.spinning,
        "mem_pattern": s.mem_pattern,
        "engine": p.engine,
        "exporter": p.export.exporter if p.export else None,
        "precision": p.export.precision if p.export else None,
        "random_weights": p.random_weights,
        "huge_pages": memory.asked(),
        **extra,
    }


def _result(
    p: GenPrepared,
    kind: str,
    settings: dict[str, Any],
    metrics: dict[str, Any],
    status: str,
    warnings: Sequence[str],
) -> Result:
    return Result(
        kind=kind,
        profile=p.target.profile_record(),
        model=p.target.model_info,
        machine=p.inventory.to_dict(),
        onnxruntime=_ort_record(p.inventory),
        ep=_ep_record(p),
        settings=settings,
        metrics={**metrics, "huge_pages_bytes": memory.huge_pages_bytes()},
        status=status,
        warnings=list(warnings),
        extra={"random_weights": p.random_weights},
    )


def generate_text(
    p: GenPrepared,
    prompt: str | None = None,
    *,
    max_new_tokens: int | None = None,
    on_token: Callable[[Any], None] | None = None,
) -> tuple[Any, Result]:
    """Generate for one prompt (the profile's first by default); Ctrl-C keeps the partial text."""
    from aialliance_cli.genai import make_settings

    settings = make_settings(
        p.spec, source=str(p.target.loaded.path), max_new_tokens=max_new_tokens
    )
    text = prompt if prompt is not None else (settings.prompts[0] if settings.prompts else None)
    if not text:
        raise BadInputError(
            f"no prompt: give --prompt, or generation.prompts in {p.target.loaded.path}"
        )
    ids = p.generator.encode(text, chat=settings.chat_template)
    out = p.generator.generate(ids, settings, on_token=on_token)
    metrics = {
        "n_prompt_tokens": out.n_prompt_tokens,
        "n_generated": out.n_generated,
        "ttft_ms": None if out.ttft_s is None else out.ttft_s * 1e3,
        "decode_tokens_per_s": out.decode_tokens_per_s,
        "prefill_tokens_per_s": out.prefill_tokens_per_s,
        "e2e_ms": out.e2e_s * 1e3,
        "stop_reason": out.stop_reason,
    }
    warnings = list(p.warnings)
    if p.random_weights:
        warnings.append("random weights: the text is meaningless; the timings are real")
    result = _result(
        p,
        "generation",
        _settings(
            p,
            {
                "prompt": text,
                "max_new_tokens": settings.max_new_tokens,
                "do_sample": settings.do_sample,
                "seed": settings.seed,
                "temperature": settings.temperature,
                "top_k": settings.top_k,
                "top_p": settings.top_p,
            },
        ),
        metrics,
        "interrupted" if out.interrupted else "ok",
        warnings,
    )
    result.extra["text"] = out.text
    # Random weights often decode to whitespace or nothing: the ids say what was generated.
    result.extra["token_ids"] = [int(t) for t in out.token_ids[0]] if out.token_ids else []
    return out, result


def bench_text(
    p: GenPrepared,
    *,
    prompt_lens: Sequence[int] | None = None,
    gen_lens: Sequence[int] | None = None,
    batches: Sequence[int] | None = None,
    warmup: int | None = None,
    repetitions: int | None = None,
) -> tuple[list[Any], list[Result]]:
    """The generation grid; one Result per (batch, prompt length, generated length)."""
    from aialliance_cli.genai.bench import bench_generation

    b = p.spec.bench
    rows = bench_generation(
        p.generator,
        prompt_lens=tuple(prompt_lens or b.prompt_lens),
        gen_lens=tuple(gen_lens or b.gen_lens),
        batches=tuple(batches or b.batches),
        warmup=b.warmup if warmup is None else warmup,
        repetitions=b.repetitions if repetitions is None else repetitions,
        random_weights=p.random_weights,
        model_name=p.target.name,
    )
    accuracy = quantized_accuracy(p)
    results = []
    for r in rows:
        r.settings["intra_op_threads"] = p.built.spec.intra_op_threads  # --md's threads column
        if accuracy is not None:
            r.metrics["accuracy"] = accuracy
        warnings = list(p.warnings)
        if p.random_weights:
            warnings.append("random weights: same architecture, no download; timings are real")
        results.append(
            _result(
                p,
                "generation-bench",
                _settings(
                    p,
                    {
                        "batch": r.batch,
                        "prompt_len": r.prompt_len,
                        "gen_len": r.gen_len,
                        "warmup": r.warmup,
                        "repetitions": r.repetitions,
                    },
                ),
                r.metrics,
                "interrupted" if r.interrupted else "ok",
                warnings,
            )
        )
    return rows, results


def quantized_accuracy(p: GenPrepared) -> dict[str, Any] | None:
    """Accuracy of an int4/int8 build against the fp32 build of the same weights, else None.

    The fp32 build is made (and cached) as the quantized one was; the figures come from
    :func:`aialliance_cli.genai.accuracy.accuracy_vs_reference` on the CPU.
    """
    e = p.export
    if e is None or e.exporter != "builder" or e.precision not in ("int4", "int8"):
        return None
    if p.source is None:
        return None
    from aialliance_cli.genai.accuracy import accuracy_vs_reference
    from aialliance_cli.genai.builder import build_genai_model

    ref = build_genai_model(
        p.source,
        precision="fp32",
        execution_provider="cpu",
        allow_download=p.allow_network,
        allow_install=p.allow_network,
    )
    report = accuracy_vs_reference(ref.folder, e.folder, threads=p.built.spec.intra_op_threads)
    return {**report.to_dict(), "reference_precision": "fp32"}


def default_model_dir(path: Path) -> Path:  # pragma: no cover - small helper for callers
    return path if path.is_dir() else path.parent
