"""The library API behind `aia run` and `aia bench`: plain functions over plain data.

    target (profile name, profile file or model.onnx)
      -> Target (profile + resolved model)          prepare_target()
      -> EP choice (plan + --ep + profile prefs)    choose_session()
      -> session, inputs                            open_session(), make_feeds()
      -> run once / bench loop                      run(), bench()
      -> Result                                     results.schema.Result

Nothing here prints; callers pass callbacks for status and progress.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aialliance_cli.errors import BadInputError, ModelError, UnavailableError
from aialliance_cli.results.schema import Result
from aialliance_cli.runtime import memory
from aialliance_cli.runtime.session import BuiltSession, SessionSpec

if TYPE_CHECKING:
    import numpy as np

Status = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class Target:
    """What to run: a validated profile (or none) and the ONNX file it resolves to."""

    name: str
    model_path: Path
    loaded: Any = None  # profiles.LoadedProfile | None
    tokenizer_dir: Path | None = None
    model_info: dict[str, Any] = field(default_factory=dict)

    @property
    def profile(self) -> Any:
        return self.loaded.profile if self.loaded is not None else None

    def profile_record(self) -> dict[str, Any]:
        if self.loaded is None:
            return {"name": self.name, "path": None, "sha256": None, "origin": "model-file"}
        return {
            "name": self.profile.name,
            "path": str(self.loaded.path),
            "sha256": self.loaded.sha256,
            "origin": self.loaded.origin,
            "task": self.profile.task,
        }


def _looks_like_model(target: str) -> bool:
    return target.lower().endswith((".onnx", ".ort"))


def prepare_target(
    target: str | None, *, allow_network: bool = False, status: Status = _quiet
) -> Target:
    """Resolve a profile name/file or a model file to a Target with a checked ONNX file."""
    from aialliance_cli.models.onnxfile import check_onnx_file

    if target is None:
        from aialliance_cli.profiles import DEFAULT_PROFILE

        target = DEFAULT_PROFILE
    if _looks_like_model(target):
        path = Path(target).expanduser().absolute()
        info = check_onnx_file(path)
        return Target(
            name=path.stem,
            model_path=path.resolve(),
            model_info={
                "path": str(path.resolve()),
                "source": "file",
                "size_bytes": info.size_bytes,
            },
        )
    from aialliance_cli.models.sources import ModelSpec, resolve_model
    from aialliance_cli.profiles import load_profile

    loaded = load_profile(target)
    prof = loaded.profile
    for name, opts in (prof.providers.options or {}).items():
        ep_options(name, opts, loaded.directory, str(loaded.path))  # bad ones: exit 2 now
    spec = ModelSpec.from_mapping(prof.model.model_dump(exclude_none=True))
    resolved = resolve_model(spec, loaded.directory, allow_network=allow_network, progress=status)
    check_onnx_file(resolved.path)
    return Target(
        name=prof.name,
        model_path=resolved.path.absolute(),
        loaded=loaded,
        tokenizer_dir=resolved.tokenizer_dir,
        model_info={
            "path": str(resolved.path.absolute()),
            "source": resolved.description,
            "cache_key": resolved.cache_key,
        },
    )


def ep_options(ep: str, options: Mapping[str, Any], base: Path, where: str) -> dict[str, Any]:
    """A profile's provider options, checked before any session is built.

    OpenVINO's ``load_config`` is JSON of device properties (``{"CPU": {...}}``). The
    OpenVINO EP documents it as a file path too, but the builds here take only the
    JSON text and answer a path with "JSON parsing error" (and ORT then retries on the
    CPU EP): a path, relative to the profile, is read here and passed as its text.
    """
    import json

    from aialliance_cli.providers.catalogue import resolve_ep_name

    out = dict(options)
    value = out.get("load_config")
    if value is None or resolve_ep_name(ep) != "OpenVINOExecutionProvider":
        return out
    text = str(value).strip()
    source = "inline JSON"
    if not text.startswith("{"):
        from aialliance_cli.safeparse import read_small_text

        path = (base / Path(text).expanduser()).resolve()
        if not path.exists():
            raise BadInputError(
                f"profile {where}: providers.options.{ep}.load_config '{value}' is neither "
                f"JSON nor an existing file (looked for {path})"
            )
        text = read_small_text(path, f"profile {where}: providers.options.{ep}.load_config")
        source = str(path)
    from aialliance_cli.safeparse import bounded_json

    try:
        parsed = bounded_json(text, f"providers.options.{ep}.load_config ({source})")
    except json.JSONDecodeError as exc:
        raise BadInputError(
            f"profile {where}: providers.options.{ep}.load_config ({source}) is not valid "
            f"JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        raise BadInputError(
            f"profile {where}: providers.options.{ep}.load_config ({source}) must map device "
            'names to their properties, e.g. {"CPU": {"INFERENCE_NUM_THREADS": "4"}}'
        )
    out["load_config"] = json.dumps(parsed)
    return out


@dataclass(frozen=True)
class Overrides:
    """What the command line says, on top of the profile (None: keep the profile's)."""

    ep: str | None = None
    threads: int | None = None
    batch: int | None = None
    dims: Mapping[str, int] = field(default_factory=dict)
    warmup: int | None = None
    iterations: int | None = None
    duration_s: float | None = None
    text: str | None = None
    input_files: Sequence[Path] = ()
    input_dir: str | None = None  # a folder of images/audio/arrays: one input set per file
    strict: bool = False
    input_sets: int = 1
    allow_custom_ops: bool = False
    min_coverage: float | None = None  # percent of FLOPs (or nodes) on the requested EP
    until_stable: float | None = None  # percent: measure until the median's CI is this narrow
    energy: bool = True  # sample RAPL/NVML/amdsmi power, clocks and temperatures
    variant: str | None = None  # a precision variant of the profile (models/variants.py)
    min_time_s: float | None = None  # measure at least this long too (--min-time)
    # Session settings on top of the profile's (aia tune): inter_op_threads, execution_mode,
    # graph_optimization_level, config (session config entries), ep_options (first EP only).
    session: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from aialliance_cli.limits import check_overrides

        check_overrides(self)  # nan, inf and absurd numbers: exit 2 before any work


def choose_session(target: Target, ov: Overrides, inventory: Any = None) -> tuple[SessionSpec, Any]:
    """Join the machine's plan, the profile's preferences and --ep into a SessionSpec."""
    import onnxruntime as ort

    from aialliance_cli.hardware import detect
    from aialliance_cli.providers.catalogue import install_hint, resolve_ep_name
    from aialliance_cli.providers.planner import Preferences, plan_for_machine

    inventory = inventory or detect()
    prof = target.profile
    prefs = Preferences()
    if prof is not None and prof.providers is not None:
        p = prof.providers
        prefs = Preferences(
            prefer=tuple(resolve_ep_name(n) for n in (p.prefer or ())),
            options={
                resolve_ep_name(k): ep_options(
                    k, v, target.loaded.directory, str(target.loaded.path)
                )
                for k, v in (p.options or {}).items()
            },
            exclude=tuple(resolve_ep_name(n) for n in (p.exclude or ())),
            devices={k: resolve_ep_name(v) for k, v in (p.devices or {}).items()},
        )
    the_plan = plan_for_machine(prefs, inventory=inventory)
    available = list(dict.fromkeys([*ort.get_available_providers(), *the_plan.eps]))
    choices = list(the_plan.choices)
    # The plan's own warnings (a preferred EP unusable here, clashing builds) concern this run.
    warnings: list[str] = list(the_plan.warnings)
    if ov.ep:
        wanted = resolve_ep_name(ov.ep)
        if wanted == "AzureExecutionProvider":
            raise BadInputError(
                "AzureExecutionProvider calls a hosted endpoint; aia runs and benchmarks "
                "local execution providers only"
            )
        matching = [c for c in choices if c.ep == wanted]
        if matching:
            choices = matching + [c for c in choices if c.ep != wanted]
        elif wanted in available:
            # In this build but the plan found no hardware for it: honour the request.
            choices = [_adhoc_choice(wanted, prefs.options.get(wanted, {}))] + choices
        else:
            hint = install_hint(wanted) or ""
            msg = f"{wanted} is not in this ONNX Runtime build ({', '.join(available)}). {hint}"
            if ov.strict:
                raise UnavailableError(msg.strip())
            warnings.append(msg.strip() + f" Using {choices[0].ep} instead.")
    first, rest = choices[0], choices[1:]
    sess_cfg = prof.session if prof is not None else None
    threads = (
        ov.threads if ov.threads is not None else (sess_cfg.intra_op_threads if sess_cfg else 0)
    )
    if sess_cfg is not None:  # --threads itself is checked in Overrides
        from aialliance_cli.limits import check_threads

        if ov.threads is None:
            check_threads("session.intra_op_threads", sess_cfg.intra_op_threads)
        check_threads("session.inter_op_threads", sess_cfg.inter_op_threads)
    logical = getattr(getattr(inventory, "cpu", None), "logical_cores", None)
    if threads and logical and threads > logical:
        warnings.append(
            f"{threads} intra-op threads on {logical} logical cores: the threads oversubscribe "
            "the cores and take turns, so the timings mostly measure that; use at most "
            f"{logical}."
        )
    custom = None
    if prof is not None and prof.custom_ops_library:
        if not ov.allow_custom_ops:
            raise BadInputError(
                f"profile {target.loaded.path} asks to load the custom-op library "
                f"{prof.custom_ops_library}; pass --allow-custom-ops to allow it"
            )
        custom_path = (target.loaded.directory / prof.custom_ops_library).resolve()
        if not custom_path.is_file():
            raise BadInputError(
                f"profile {target.loaded.path}: custom_ops_library {prof.custom_ops_library} "
                f"does not exist (looked for {custom_path})"
            )
        custom = str(custom_path)
    spec = SessionSpec(
        ep=first.ep,
        options=dict(first.options),
        source=getattr(first, "source", "build"),
        device_kind=first.device_kind,
        fallbacks=tuple(
            (c.ep, dict(c.options), getattr(c, "source", "build"), c.device_kind) for c in rest
        ),
        intra_op_threads=threads or 0,
        inter_op_threads=sess_cfg.inter_op_threads if sess_cfg else 0,
        graph_optimization_level=sess_cfg.graph_optimization_level if sess_cfg else "all",
        execution_mode=sess_cfg.execution_mode if sess_cfg else "sequential",
        config=dict(sess_cfg.config or {}) if sess_cfg else {},
        strict=ov.strict,
        custom_ops_library=custom,
    )
    if ov.session:
        spec = _with_session_settings(spec, ov.session)
    return spec, (the_plan, first, warnings)


def _with_session_settings(spec: SessionSpec, extra: Mapping[str, Any]) -> SessionSpec:
    """Apply tuned session settings (``Overrides.session``) to a spec."""
    keys = ("inter_op_threads", "execution_mode", "graph_optimization_level")
    changes: dict[str, Any] = {k: extra[k] for k in keys if extra.get(k) is not None}
    if extra.get("config"):
        changes["config"] = {**spec.config, **{str(k): str(v) for k, v in extra["config"].items()}}
    if extra.get("ep_options"):
        changes["options"] = {**spec.options, **dict(extra["ep_options"])}
    return replace(spec, **changes)


def _adhoc_choice(ep: str, options: dict[str, Any]) -> Any:
    from aialliance_cli.providers.planner import PlanChoice

    return PlanChoice(
        ep=ep,
        short=ep,
        device="default",
        device_kind="unknown",
        options=dict(options),
        reason="asked for with --ep",
        score=0,
    )


# ----------------------------------------------------------------------------- inputs


def _profile_dims(target: Target, ov: Overrides) -> dict[str, int]:
    dims: dict[str, int] = {}
    if target.profile is not None and target.profile.inputs is not None:
        dims.update({k: int(v) for k, v in (target.profile.inputs.dims or {}).items()})
    if ov.batch is not None:
        dims["batch"] = ov.batch
    dims.update({k: int(v) for k, v in ov.dims.items()})
    return dims


@dataclass
class FeedReport:
    """What make_feeds read: real input files, how they were preprocessed, what to say."""

    files: list[str] = field(default_factory=list)
    preprocess: str | None = None
    warnings: list[str] = field(default_factory=list)
    # Audio windows that `run` feeds in order, carrying (input, output) state pairs.
    stream: tuple[tuple[str, str], ...] | None = None

    def record(self) -> dict[str, Any]:
        if not self.files:
            return {}
        out: dict[str, Any] = {"input_files": list(self.files)}
        if self.preprocess:
            out["preprocess"] = self.preprocess
        return out


def _media_sets(specs, target: Target, ov: Overrides, report: FeedReport) -> list[dict]:
    """One input set per image file or audio window (--input FILE, --input-dir DIR)."""
    from aialliance_cli.runtime import inputs as I
    from aialliance_cli.runtime import preprocess as P

    files = [Path(f) for f in ov.input_files]
    if ov.input_dir:
        files += P.input_files_in(Path(ov.input_dir))
    media = [f for f in files if P.file_kind(f) in ("image", "audio")]
    if not media:
        return []
    inputs = target.profile.inputs if target.profile is not None else None
    where = f"profile {target.loaded.path}" if target.loaded is not None else "the model"
    sets: list[dict[str, np.ndarray]] = []
    by_name = {s.name: s for s in specs}
    for f in media:
        kind = P.file_kind(f)
        declared = getattr(inputs, kind, None) if inputs is not None else None
        name = getattr(declared, "input", None)
        if name is not None and name not in by_name:
            raise BadInputError(
                f"{where}: inputs.{kind}.input '{name}' is not an input of the model "
                f"(its inputs: {', '.join(by_name)})"
            )
        if kind == "image":
            if name is None:
                four = [s for s in specs if len(s.shape) == 4 and s.dtype.startswith("float")]
                if not four:
                    raise BadInputError(
                        f"{f} is an image, but the model has no 4-D float input to feed it to "
                        f"(its inputs: {', '.join(by_name)})"
                    )
                name = four[0].name
            if declared is not None:
                settings = P.ImageSettings.from_profile(declared)
            else:
                settings = P.guess_image_settings(by_name[name].shape)
                if settings is None:
                    raise BadInputError(
                        f"{f} is an image, but input '{name}' {I._fmt_shape(by_name[name].shape)} "
                        "has no channel axis of 1 or 3; declare inputs.image in a profile "
                        "(docs/profiles.md)"
                    )
                msg = (
                    f"{where} declares no inputs.image: images are read as "
                    f"{settings.describe()}; declare the model's own preprocessing "
                    "(docs/profiles.md#images-and-audio)"
                )
                if msg not in report.warnings:
                    report.warnings.append(msg)
            report.preprocess = f"image -> {name}: {settings.describe()}"
            sets.append({name: P.image_tensor(f, settings)})
        else:
            if declared is None:
                raise BadInputError(
                    f"{f} is an audio file, but {where} declares no inputs.audio (the sample "
                    "rate and window the model expects; docs/profiles.md#images-and-audio)"
                )
            if name is None:
                floats = [s for s in specs if s.dtype.startswith("float") and len(s.shape) >= 1]
                name = floats[0].name if floats else specs[0].name
            a = P.AudioSettings.from_profile(declared)
            report.preprocess = f"audio -> {name}: {a.describe()}"
            for pair in declared.state.items():
                if pair[0] not in by_name:
                    raise BadInputError(
                        f"{where}: inputs.audio.state names input '{pair[0]}', which the model "
                        f"lacks (its inputs: {', '.join(by_name)})"
                    )
            windows = P.audio_windows(f, a)
            sets.extend({name: w} for w in windows)
            if a.window:
                report.stream = tuple(declared.state.items())
        report.files.append(str(f))
    return sets


def make_feeds(
    session: Any,
    target: Target,
    ov: Overrides,
    *,
    n_sets: int = 1,
    report: FeedReport | None = None,
) -> tuple[list[dict[str, np.ndarray]], dict[str, int]]:
    """Build ``n_sets`` distinct input sets and the resolved symbolic dims.

    Real images and audio (``--input``, ``--input-dir``) make one set each (one per
    window for windowed audio) and then set the count: bench rotates through them all.
    """
    from aialliance_cli.runtime import inputs as I

    specs = I.input_specs(session)
    given = _profile_dims(target, ov)
    prof = target.profile
    # Dims that only size the profile's own tensor shapes (models with unnamed dims).
    shape_names: set[str] = set()
    if prof is not None and prof.inputs is not None:
        for t in (prof.inputs.tensors or {}).values():
            shape_names |= {d for d in (t.shape or ()) if isinstance(d, str)}
    model_names = I.model_dim_names(specs)
    dims = I.resolve_dims(
        specs, {k: v for k, v in given.items() if k not in shape_names or k in model_names}
    )
    rules: dict[str, I.TensorRule] = {}
    provided: dict[str, np.ndarray] = {}
    base = target.loaded.directory if target.loaded is not None else Path.cwd()
    if prof is not None and prof.inputs is not None:
        for name, t in (prof.inputs.tensors or {}).items():
            rules[name] = I.TensorRule(
                synthesize=getattr(t, "synthesize", None),
                value=getattr(t, "value", None),
                file=(base / t.file) if getattr(t, "file", None) else None,
                key=getattr(t, "key", None),
                dtype=getattr(t, "dtype", None),
                low=getattr(t, "low", None),
                high=getattr(t, "high", None),
                seed=getattr(t, "seed", None),
                shape=tuple(given.get(d, 1) if isinstance(d, str) else int(d) for d in t.shape)
                if t.shape
                else None,
            )
    text_cfg = prof.inputs.text if prof is not None and prof.inputs is not None else None
    texts: list[str] | None = None
    if ov.text is not None:
        texts = [ov.text]
    elif text_cfg is not None:
        texts = [text_cfg.value] if isinstance(text_cfg.value, str) else list(text_cfg.value)
    if texts is not None:
        provided.update(_tokenized(specs, dims, texts, target, text_cfg))
    from aialliance_cli.runtime.preprocess import file_kind, input_files_in

    report = report if report is not None else FeedReport()
    array_files = [Path(f) for f in ov.input_files if file_kind(Path(f)) not in ("image", "audio")]
    for f in array_files:
        provided.update(I.load_array_file(f))
    media = _media_sets(specs, target, ov, report)
    if ov.input_dir:  # arrays in the folder are input sets of their own, like its images
        media += [
            I.load_array_file(f)
            for f in input_files_in(Path(ov.input_dir))
            if file_kind(f) == "array"
        ]
        report.files += [
            str(f) for f in input_files_in(Path(ov.input_dir)) if file_kind(f) == "array"
        ]
    if media and (n_sets > 1 or report.stream is not None):
        n_sets = len(media)  # rotate through every real input
    set_dims = [
        _dims_from_arrays(specs, dims, {**provided, **media[i % len(media)]}, ov)
        if media
        else (_dims_from_arrays(specs, dims, provided, ov) if provided else dims)
        for i in range(max(1, n_sets) if media else 1)
    ]
    dims = set_dims[0]
    shapes = {name: r.shape for name, r in rules.items() if r.shape}
    I.check_size(specs, dims, max(1, n_sets), shapes)
    covered = set(provided) | set(shapes) | {k for m in media for k in m}
    unsized = I.unsized_warning(I.unsized_axes(specs, given, covered))
    if unsized and unsized not in report.warnings:
        report.warnings.append(unsized)  # never silently 1 (issue 11)
    vocab = I.vocab_sizes(target.model_path)
    sets = []
    for seed in range(max(1, n_sets)):
        given_arrays = provided
        if seed and texts is not None and "input_ids" in provided and not ov.input_files:
            given_arrays = {**provided, "input_ids": _vary_tokens(provided, vocab, seed)}
        if media:
            given_arrays = {**given_arrays, **media[seed % len(media)]}
        sets.append(
            I.build_feeds(
                specs,
                set_dims[seed % len(set_dims)],
                rules=rules,
                provided=given_arrays,
                vocab=vocab,
                seed=seed,
            )
        )
    if len({tuple(sorted(d.items())) for d in set_dims}) > 1:
        report.warnings.append(
            f"the {len(set_dims)} input sets differ in size (dims from "
            f"{_fmt_dims(set_dims[0])} to {_fmt_dims(set_dims[-1])}); the latency figures "
            "mix them, as a stream of real inputs would"
        )
    return sets, dims


def _fmt_dims(dims: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(dims.items())) or "fixed"


def _vary_tokens(provided: dict[str, np.ndarray], vocab: dict[str, int], seed: int) -> np.ndarray:
    """Honest inputs for text: other token ids at the same positions, length and mask.

    Repeating one tensor lets caches and branch predictors flatter the figures; the
    special tokens at both ends and the padding stay as the tokenizer made them.
    """
    import numpy as np

    ids = provided["input_ids"].copy()
    mask = provided.get("attention_mask")
    mask = np.ones_like(ids) if mask is None else mask
    high = vocab.get("input_ids") or int(ids.max()) + 1
    low = min(1000, high // 4)
    rng = np.random.default_rng(seed)
    for row in range(ids.shape[0]):
        real = np.flatnonzero(mask[row])
        inner = real[1:-1] if real.size > 2 else real
        ids[row, inner] = rng.integers(low, max(high, low + 1), size=inner.size)
    return ids


def _dims_from_arrays(specs, dims: dict[str, int], provided, ov: Overrides) -> dict[str, int]:
    """Given arrays fix the dims they span; a conflict with --batch/--dim is an error."""
    import numpy as np

    from aialliance_cli.runtime import inputs as I

    cli: dict[str, tuple[str, int]] = {}
    cli_given = dict(ov.dims)
    if ov.batch is not None:
        cli_given.setdefault("batch", ov.batch)
    for key, value in cli_given.items():
        for name in I.controlled_names(specs, key):
            cli[name] = (key, int(value))
    out = dict(dims)
    for spec in specs:
        arr = provided.get(spec.name)
        if arr is None:
            continue
        for axis, d in enumerate(spec.shape):
            name = d if isinstance(d, str) else (f"{spec.name}[{axis}]" if d is None else None)
            if name is None or axis >= np.ndim(arr):
                continue
            size = int(np.shape(arr)[axis])
            if name in cli and cli[name][1] != size:
                key, value = cli[name]
                flag = "--batch" if key == "batch" and ov.batch is not None else f"--dim {key}"
                raise BadInputError(
                    f"{flag}={value} conflicts with the given input '{spec.name}', whose axis "
                    f"{axis} ({name}) has size {size}"
                )
            out[name] = size
    return out


def _tokenized(specs, dims, texts, target: Target, text_cfg) -> dict[str, np.ndarray]:
    from aialliance_cli.runtime import inputs as I

    names = {s.name for s in specs}
    if "input_ids" not in names:
        raise BadInputError(
            f"text input was given, but the model has no 'input_ids' input "
            f"(its inputs: {', '.join(sorted(names))})"
        )
    ids_spec = next(s for s in specs if s.name == "input_ids")
    shape = I.concrete_shape(ids_spec, dims)
    batch = shape[0] if shape else 1
    max_length = (text_cfg.max_length if text_cfg and text_cfg.max_length else None) or (
        shape[1] if len(shape) > 1 else 128
    )
    tok_path = None
    if text_cfg is not None and text_cfg.tokenizer:
        tok_path = (target.loaded.directory / text_cfg.tokenizer).resolve()
    elif target.tokenizer_dir is not None:
        tok_path = target.tokenizer_dir
    else:
        tok_path = target.model_path.parent
    encoded = I.tokenize(texts, tok_path, batch, max_length)
    return {k: v for k, v in encoded.items() if k in names}


# ----------------------------------------------------------------------------- sessions


@dataclass
class Prepared:
    target: Target
    built: BuiltSession
    feeds: list[dict[str, np.ndarray]]
    dims: dict[str, int]
    plan: Any
    choice: Any
    warnings: list[str]
    inventory: Any
    placement: Any = None
    feed_report: FeedReport | None = None


def open_session(
    target: Target,
    ov: Overrides,
    *,
    status: Status = _quiet,
    inventory: Any = None,
    enable_profiling: bool = False,
    profile_prefix: str | None = None,
) -> Prepared:
    """Plan, build the session (with fallback), make the inputs."""
    from aialliance_cli.hardware import detect
    from aialliance_cli.runtime.session import build_session

    inventory = inventory or detect()
    spec, (the_plan, choice, warnings) = choose_session(target, ov, inventory)
    spec = replace(spec, enable_profiling=enable_profiling, profile_prefix=profile_prefix)
    status(f"building the session on {spec.ep}")
    built = build_session(target.model_path, spec)
    warnings.extend(built.fallback_warnings())
    report = FeedReport()
    feeds, dims = make_feeds(built.session, target, ov, n_sets=ov.input_sets, report=report)
    warnings.extend(report.warnings)
    placement = _placement(built, target, dims)
    _coverage_gate(placement, built, target, ov, warnings)
    return Prepared(
        target, built, feeds, dims, the_plan, choice, warnings, inventory, placement, report
    )


def _placement(built: BuiltSession, target: Target, dims: dict[str, int]) -> Any:
    """Where the nodes ran, read from ONNX Runtime, with FLOP shares where countable."""
    from aialliance_cli.analysis.placement import read_placement

    flops = _flop_report(target.model_path, dims)
    try:
        return read_placement(
            built.session, None, flops, built.spec.ep, node_count=_node_count(target.model_path)
        )
    except Exception:  # placement is a report, never a reason to fail the run
        return None


def _flop_report(model_path: Path, dims: dict[str, int]) -> Any:
    """The FLOP report at ``dims`` from the on-disk facts cache (counted once per model)."""
    from aialliance_cli.analysis.facts import flop_report

    try:
        return flop_report(model_path, dims)
    except Exception:  # FLOPs are a report, never a reason to fail the run
        return None


def _node_count(model_path: Path) -> int | None:
    from aialliance_cli.models.protoscan import scan_model

    try:
        graph = scan_model(model_path).graph
    except Exception:
        return None
    return len(graph.nodes) if graph is not None else None


def _coverage_gate(
    placement: Any, built: BuiltSession, target: Target, ov: Overrides, warnings: list[str]
) -> None:
    """Warn below 100% on the requested EP; refuse (exit 3) below --min-coverage."""
    if placement is None:
        return
    share = placement.share_flops_requested
    what = "FLOPs"
    if share is None:
        share, what = placement.share_nodes_requested, "nodes"
    if share is None:
        return
    if share < 1.0:
        warnings.append(f"coverage below 100%: {placement.summary_line()}")
    minimum = ov.min_coverage
    if minimum is None and target.profile is not None and target.profile.bench is not None:
        minimum = target.profile.bench.min_coverage
    wanted = _asked_ep(ov)
    if minimum and wanted is not None and wanted != placement.requested_ep:
        # --ep named an EP this build lacks and the plan's first EP stood in: it ran 0%.
        raise UnavailableError(
            f"{wanted} was asked for but is not in this ONNX Runtime build, so it ran 0% of "
            f"{target.name} (the session runs on {built.ep}), below the minimum coverage of "
            f"{minimum:g}%."
        )
    if minimum is not None and share * 100 < minimum:
        raise UnavailableError(
            f"{built.spec.ep} ran {share * 100:.1f}% of the {what} of {target.name}, below "
            f"the minimum coverage of {minimum:g}%: {placement.summary_line()}"
        )


def _asked_ep(ov: Overrides) -> str | None:
    if not ov.ep:
        return None
    from aialliance_cli.providers.catalogue import resolve_ep_name

    return resolve_ep_name(ov.ep)


_FLOPS_CACHE: dict[tuple[str, tuple[tuple[str, int], ...]], tuple[Any, Any]] = {}


def _flops(model_path: Path, dims: dict[str, int]) -> tuple[Any, Any]:
    """The loaded ModelProto and its FLOP report (for ``aia profile``, which needs both)."""
    key = (str(model_path), tuple(sorted(dims.items())))
    if key not in _FLOPS_CACHE:
        try:
            from aialliance_cli.analysis.flops import count_flops
            from aialliance_cli.analysis.graph import load_model_proto

            model = load_model_proto(model_path)
            _FLOPS_CACHE[key] = (model, count_flops(model, dims))
        except Exception:
            _FLOPS_CACHE[key] = (None, None)
    return _FLOPS_CACHE[key]


# ----------------------------------------------------------------------------- records


def _ort_record(inventory: Any) -> dict[str, Any]:
    sw = inventory.software
    return {
        "version": sw.ort_version,
        "distributions": [f"{d.name}=={d.version}" for d in sw.ort_distributions],
        "available_providers": list(sw.available_providers),
    }


def _ep_record(p: Prepared) -> dict[str, Any]:
    b = p.built
    rec: dict[str, Any] = {
        "requested": b.spec.ep,
        "name": b.ep,
        "device": getattr(p.choice, "device", None),
        "reason": getattr(p.choice, "reason", None),
        "options": {k: str(v) for k, v in b.options.items()},
        "providers": list(b.providers),
        "fallbacks": [
            {"requested": f.requested, "error": f.error, "used_instead": f.used_instead}
            for f in b.fallbacks
        ],
    }
    if p.placement is not None and hasattr(p.placement, "to_dict"):
        rec["placement"] = {**p.placement.to_dict(), "summary": p.placement.summary_line()}
    return rec


def _settings_record(p: Prepared, extra: dict[str, Any]) -> dict[str, Any]:
    s = p.built.spec
    return {
        "intra_op_threads": s.intra_op_threads,
        "inter_op_threads": s.inter_op_threads,
        "graph_optimization_level": s.graph_optimization_level,
        "execution_mode": s.execution_mode,
        "dims": dict(p.dims),
        "batch": _batch_of(p),
        "input_sets": len(p.feeds),
        **(p.feed_report.record() if p.feed_report is not None else {}),
        "huge_pages": memory.asked(),
        **extra,
    }


def _batch_of(p: Prepared) -> int:
    for name, value in p.dims.items():
        from aialliance_cli.runtime.inputs import DIM_ALIASES

        if DIM_ALIASES["batch"].search(name):
            return int(value)
    first = next(iter(p.feeds[0].values()), None)
    return int(first.shape[0]) if first is not None and first.ndim > 0 else 1


# ----------------------------------------------------------------------------- run


@dataclass
class RunOutput:
    result: Result
    outputs: dict[str, np.ndarray]
    embedding: np.ndarray | None
    prepared: Prepared


def run(
    target: str | Target | None = None,
    overrides: Overrides | None = None,
    *,
    status: Status = _quiet,
    allow_network: bool = False,
) -> RunOutput:
    """Run the model once on the chosen EP and return its outputs."""
    import time

    import numpy as np

    ov = overrides or Overrides()
    tgt = (
        target
        if isinstance(target, Target)
        else prepare_target(target, allow_network=allow_network, status=status)
    )
    if ov.variant is not None:
        from aialliance_cli.models.variants import resolve_variant

        tgt = resolve_variant(tgt, ov.variant, status, allow_network=allow_network)
    p = open_session(tgt, ov, status=status)
    names = [o.name for o in p.built.session.get_outputs()]
    t0 = time.perf_counter()
    import onnxruntime as ort

    run_options = ort.RunOptions()
    run_options.log_severity_level = 3  # errors come back as one message, not C++ log lines
    stream = p.feed_report.stream if p.feed_report is not None else None
    try:
        if stream is not None:
            outputs = _run_stream(p.built.session, names, p.feeds, stream, run_options)
        else:
            values = p.built.session.run(None, p.feeds[0], run_options)
            outputs = dict(zip(names, values, strict=False))
    except Exception as exc:
        raise _run_error(exc, tgt) from exc
    elapsed = time.perf_counter() - t0
    embedding = _pooled_embedding(tgt, outputs, p.feeds[0])
    metrics: dict[str, Any] = {
        "latency_ms": elapsed * 1e3,
        **({"windows": len(p.feeds)} if stream is not None else {}),
        "session_create_s": p.built.create_s,
        "outputs": {k: _summary(v) for k, v in outputs.items()},
    }
    if embedding is not None:
        metrics["embedding"] = {
            "dim": int(embedding.shape[-1]),
            "norm": [float(x) for x in np.linalg.norm(embedding, axis=-1).ravel()],
        }
    result = Result(
        kind="run",
        profile=tgt.profile_record(),
        model=tgt.model_info,
        machine=p.inventory.to_dict(),
        onnxruntime=_ort_record(p.inventory),
        ep=_ep_record(p),
        settings=_settings_record(p, {}),
        metrics=metrics,
        warnings=list(p.warnings),
    )
    return RunOutput(result, outputs, embedding, p)


def _run_stream(
    session: Any,
    names: list[str],
    feeds: Sequence[dict[str, np.ndarray]],
    state: tuple[tuple[str, str], ...],
    run_options: Any,
) -> dict[str, np.ndarray]:
    """Feed audio windows in order, each output of ``state`` becoming the next window's input.

    Per-window outputs are joined along their first axis (one row per window); the state
    outputs keep their last value.
    """
    import numpy as np

    carried: dict[str, np.ndarray] = {}
    per_window: dict[str, list[np.ndarray]] = {n: [] for n in names}
    state_outputs = {out: inp for inp, out in state}
    for feed in feeds:
        values = session.run(None, {**feed, **carried}, run_options)
        for n, v in zip(names, values, strict=False):
            if n in state_outputs:
                carried[state_outputs[n]] = v
            per_window[n].append(np.asarray(v))
    out: dict[str, np.ndarray] = {}
    for n, vs in per_window.items():
        if n in state_outputs or not vs:
            out[n] = vs[-1] if vs else np.zeros(0)
        else:
            out[n] = np.concatenate([np.atleast_1d(v) for v in vs], axis=0)
    return out


def _run_error(exc: Exception, tgt: Target) -> Exception:
    from aialliance_cli.errors import RuntimeFailure

    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "INVALID_ARGUMENT" in msg or "Got invalid dimensions" in msg:
        return ModelError(f"the inputs do not fit the model {tgt.model_path}: {msg}")
    return RuntimeFailure(f"inference failed on {tgt.model_path}: {msg}")


def _summary(arr: np.ndarray) -> dict[str, Any]:
    import numpy as np

    a = np.asarray(arr)
    out: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype)}
    if a.size and a.dtype.kind in "fiub":
        f = a.astype(np.float64)
        out.update(min=float(f.min()), max=float(f.max()), mean=float(f.mean()), std=float(f.std()))
        out["finite"] = bool(np.isfinite(f).all())
    return out


def _pooled_embedding(
    tgt: Target, outputs: dict[str, np.ndarray], feeds: dict[str, np.ndarray]
) -> np.ndarray | None:
    import numpy as np

    prof = tgt.profile
    if prof is None or prof.task != "sentence-embedding":
        return None
    out_cfg = prof.output
    name = (out_cfg.embedding_output if out_cfg else None) or next(iter(outputs))
    if name not in outputs:
        raise BadInputError(
            f"profile {tgt.loaded.path}: output.embedding_output '{name}' is not an output of "
            f"the model (its outputs: {', '.join(outputs)})"
        )
    hidden = np.asarray(outputs[name], dtype=np.float32)
    pooling = out_cfg.pooling if out_cfg else "mean"
    if hidden.ndim == 2 or pooling == "none":
        emb = hidden if hidden.ndim == 2 else hidden[:, 0]
    elif pooling == "cls":
        emb = hidden[:, 0]
    else:
        mask = feeds.get("attention_mask")
        m = np.ones(hidden.shape[:2], np.float32) if mask is None else mask.astype(np.float32)
        emb = (hidden * m[..., None]).sum(1) / np.clip(m.sum(1, keepdims=True), 1e-9, None)
    if out_cfg is None or out_cfg.normalize:
        emb = emb / np.clip(np.linalg.norm(emb, axis=-1, keepdims=True), 1e-12, None)
    return emb


# ----------------------------------------------------------------------------- bench


@dataclass
class BenchOutput:
    result: Result
    prepared: Prepared
    latencies_ms: Sequence[float]  # an array("d") from the loop


def bench_settings(target: Target, ov: Overrides) -> Any:
    from aialliance_cli.runtime.bench import BenchSettings

    b = target.profile.bench if target.profile is not None else None
    warmup = ov.warmup if ov.warmup is not None else (b.warmup if b else 10)
    if ov.warmup is None and ov.iterations is not None and ov.duration_s is None:
        # A quick `-n 1` check does not pay ten warm-up runs: no more warm-up than measuring.
        warmup = min(warmup, ov.iterations)
    duration = (
        ov.duration_s
        if ov.duration_s is not None
        else (None if ov.iterations is not None else (b.duration_s if b else None))
    )
    iterations = ov.iterations if ov.iterations is not None else (b.iterations if b else 100)
    if warmup < 0:
        raise BadInputError(f"--warmup must be 0 or more, got {warmup}")
    if duration is None and (iterations is None or iterations < 1):
        raise BadInputError(f"--iterations must be 1 or more, got {iterations}")
    if duration is not None and duration <= 0:
        raise BadInputError(f"--duration must be more than 0 seconds, got {duration}")
    if ov.until_stable is not None and ov.until_stable <= 0:
        raise BadInputError(f"--until-stable must be a percentage above 0, got {ov.until_stable}")
    min_time = 0.0
    if duration is None and ov.until_stable is None:
        from aialliance_cli.runtime.bench import DEFAULT_MIN_TIME_S

        if ov.min_time_s is not None:
            min_time = ov.min_time_s
        elif ov.iterations is None:  # -n N alone means exactly N runs
            profile_min = getattr(b, "min_time_s", None) if b else None
            min_time = DEFAULT_MIN_TIME_S if profile_min is None else profile_min
    if min_time < 0 or min_time != min_time:
        raise BadInputError(f"--min-time must be 0 or more seconds, got {min_time}")
    return BenchSettings(
        warmup=warmup,
        iterations=iterations if duration is None else None,
        duration_s=duration,
        until_stable_pct=ov.until_stable,
        max_iterations=iterations
        if ov.until_stable and iterations and ov.iterations is not None
        else 10_000_000,
        min_time_s=float(min_time),
    )


def bench(
    target: str | None = None,
    overrides: Overrides | None = None,
    *,
    status: Status = _quiet,
    progress: Callable[[int, int | None, float], None] | None = None,
    allow_network: bool = False,
    prepared: Prepared | None = None,
    on_measured: Callable[[], None] | None = None,
) -> BenchOutput:
    """Benchmark one configuration; Ctrl-C returns the partial result (status 'interrupted').

    ``on_measured()`` is called as soon as the loop is over, before the statistics.
    """
    import numpy as np

    from aialliance_cli.results.stats import latency_stats
    from aialliance_cli.runtime.bench import run_loop

    ov = overrides or Overrides()
    if prepared is None:
        tgt = prepare_target(target, allow_network=allow_network, status=status)
        if ov.variant is not None:
            from aialliance_cli.models.variants import resolve_variant

            tgt = resolve_variant(tgt, ov.variant, status, allow_network=allow_network)
        settings = bench_settings(tgt, ov)
        prepared = open_session(tgt, ov, status=status)
    else:
        settings = bench_settings(prepared.target, ov)
    p = prepared
    status(f"benchmarking on {p.built.ep}")
    monitor = None
    if ov.energy:
        from aialliance_cli.hardware.energy import PowerMonitor

        monitor = PowerMonitor(gpus=None, probe_gpus=bool(p.inventory.gpus)).start()
    try:
        m = run_loop(p.built.session, p.feeds, settings, progress)
        if on_measured is not None:
            on_measured()
    except Exception as exc:
        raise _run_error(exc, p.target) from exc
    finally:
        energy = monitor.stop() if monitor is not None else None
    batch = _batch_of(p)
    lat = m.latencies_ms
    metrics: dict[str, Any] = {
        "iterations": len(lat),
        "warmup": m.warmup_done,
        "wall_s": m.wall_s,
        "session_create_s": p.built.create_s,
        "session_memory_bytes": p.built.rss_added_bytes,
        "peak_rss_bytes": m.peak_rss_bytes,
        "huge_pages_bytes": memory.huge_pages_bytes(),
        "cpu_percent": m.cpu_percent,
        "cpu_percent_of_machine": m.cpu_percent_of_machine,
        "other_cpu_percent": m.other_cpu_percent,
    }
    noise: list[str] = []
    if lat:
        from aialliance_cli.results.stats import noise_warnings, throughput_ci95

        stats = latency_stats(lat)
        metrics["latency_ms"] = stats.to_dict()
        busy_s = float(np.sum(np.asarray(lat))) / 1e3
        metrics["throughput_per_s"] = len(lat) / busy_s if busy_s else None
        metrics["samples_per_s"] = batch * len(lat) / busy_s if busy_s else None
        ci = throughput_ci95(lat, 1.0)
        metrics["throughput_ci95"] = list(ci) if ci else None
        if settings.until_stable_pct is not None:
            metrics["stable"] = m.stable
        noise = noise_warnings(
            stats, cpu_governor=p.inventory.cpu.governor, other_cpu_percent=m.other_cpu_percent
        )
        metrics["efficiency"] = _efficiency(p, stats.p50, energy)
    if energy is not None:
        metrics["energy"] = energy.per_inference(len(lat)).to_dict()
        if energy.throttled:
            noise.append("the CPU clock dropped below its base while busy: throttling")
    metrics.update(_gpu_memory(p))
    warnings = list(p.warnings) + noise
    if settings.until_stable_pct is not None and m.stable is False and not m.interrupted:
        warnings.append(
            f"the median did not settle within ±{settings.until_stable_pct:g}% before the "
            "time limit; the figures are noisier than asked for"
        )
    status_ = "interrupted" if m.interrupted else "ok"
    if m.interrupted:
        warnings.append(f"interrupted after {len(lat)} measured iterations")
    result = Result(
        kind="bench",
        profile=p.target.profile_record(),
        model=p.target.model_info,
        machine=p.inventory.to_dict(),
        onnxruntime=_ort_record(p.inventory),
        ep=_ep_record(p),
        settings=_settings_record(
            p,
            {
                "warmup": settings.warmup,
                "iterations": settings.iterations,
                "duration_s": settings.duration_s,
                "min_time_s": settings.min_time_s,
                "strict": ov.strict,
            },
        ),
        metrics=metrics,
        status=status_,
        warnings=warnings,
    )
    return BenchOutput(result, p, lat)


def _efficiency(p: Prepared, p50_ms: float, energy: Any) -> dict[str, Any] | None:
    """Achieved GFLOP/s at the median latency, and its share of the estimated CPU peak."""
    flops = _flop_report(p.target.model_path, p.dims)
    if flops is None or not flops.total or p50_ms <= 0:
        return None
    from aialliance_cli.analysis.flops import CONTROL_FLOW_NOTE, work_in_subgraphs

    if work_in_subgraphs(flops):
        # The work sits in control-flow subgraphs that aia does not count: no honest figure.
        return {"flops_per_inference": None, "gflops_per_s": None, "note": CONTROL_FLOW_NOTE}
    achieved = flops.total / (p50_ms / 1e3) / 1e9
    out: dict[str, Any] = {
        "flops_per_inference": int(flops.total),
        "gflops_per_s": achieved,
        "flops_unresolved_nodes": len(flops.unresolved),
    }
    if p.built.ep in ("CPUExecutionProvider", "OpenVINOExecutionProvider") and (
        p.choice is None or getattr(p.choice, "device_kind", "cpu") in ("cpu", "unknown")
    ):
        from aialliance_cli.hardware.peak import estimate_cpu_peak

        clock = getattr(energy, "clock_mhz_max", None) if energy is not None else None
        threads = p.built.spec.intra_op_threads or None
        peak = estimate_cpu_peak(
            p.inventory.cpu,
            threads,
            None if (p.inventory.cpu.max_mhz or p.inventory.cpu.base_mhz) else clock,
        )
        out["peak"] = peak.to_dict()
        if peak.gflops:
            out["fraction_of_peak"] = achieved / peak.gflops
            if achieved > peak.gflops:
                out["note"] = (
                    "achieved rate above the estimated peak: the clock the OS reports is "
                    "nominal (turbo runs higher) or the core has more FMA throughput than assumed"
                )
    return out


def _gpu_memory(p: Prepared) -> dict[str, Any]:
    """GPU memory in use after the run, where NVML reports it (CUDA/TensorRT sessions)."""
    if p.built.ep not in (
        "CUDAExecutionProvider",
        "TensorrtExecutionProvider",
        "NvTensorRTRTXExecutionProvider",
    ):
        return {}
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(int(p.built.options.get("device_id", 0)))
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {"gpu_memory_used_bytes": int(info.used), "gpu_memory_total_bytes": int(info.total)}
    except Exception as exc:  # no NVML: say so rather than guess
        return {"gpu_memory_used_bytes": None, "gpu_memory_note": f"not available: {exc}"}


def machine_summary(inventory: Any) -> str:
    cpu = inventory.cpu
    return f"{cpu.model_name} ({cpu.logical_cores} threads), {platform.system()}"
