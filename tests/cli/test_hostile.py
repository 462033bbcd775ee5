"""The corpus in tests/fixtures/hostile/: each file is refused (exit 2) or shown safely."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aialliance_cli.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import matmul_model  # noqa: E402

HOSTILE = Path(__file__).resolve().parent.parent / "fixtures" / "hostile"
runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def assert_refused(result, *needles: str) -> None:
    """Exit 2 with a message naming what was wrong; no traceback, no 'unexpected'."""
    text = result.output
    assert result.exit_code == 2, text
    assert "Error:" in text
    assert "unexpected" not in text and "Traceback" not in text
    for needle in needles:
        assert needle in text, text


@pytest.fixture
def hostile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hostile corpus copied beside a real model, as the working directory."""
    for f in HOSTILE.iterdir():
        shutil.copy(f, tmp_path / f.name)
    matmul_model(tmp_path / "model.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("billion-laughs.yaml", "aliases expand"),
        ("deep-nesting.yaml", "deeper than 64 levels"),
        ("recursive-alias.yaml", "contains it"),
        ("huge-integer.yaml", "4300 digits"),
    ],
)
def test_hostile_profile_is_refused(hostile_dir: Path, name: str, needle: str) -> None:
    start = time.monotonic()
    assert_refused(invoke("profiles", "validate", name), name, needle)
    assert_refused(invoke("run", name), name, needle)
    assert time.monotonic() - start < 30  # a hang check; the work itself is milliseconds


def test_billion_laughs_on_the_search_path_is_listed_not_expanded(hostile_dir: Path) -> None:
    (hostile_dir / "profiles").mkdir()
    shutil.copy(HOSTILE / "billion-laughs.yaml", hostile_dir / "profiles" / "laughs.yaml")
    result = invoke("profiles", "list", "--json")
    assert result.exit_code == 0, result.output
    assert "laughs" in result.stdout


@pytest.mark.slow
def test_billion_laughs_real_cli_bounded_memory(hostile_dir: Path) -> None:
    """The console script, under a 2 GiB address-space limit, scanning a laughs profile."""
    import resource

    (hostile_dir / "profiles").mkdir()
    shutil.copy(HOSTILE / "billion-laughs.yaml", hostile_dir / "profiles" / "laughs.yaml")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    for args in (["profiles", "list"], ["profiles", "validate", "profiles/laughs.yaml"]):
        proc = subprocess.run(
            [sys.executable, "-m", "aialliance_cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=limit,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, proc.stderr
        assert proc.returncode in (0, 2), proc.stderr
    assert proc.returncode == 2 and "aliases expand" in proc.stderr


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("deep.jsonl", "deeper than 64 levels"),
        ("huge-integer.jsonl", "not valid JSON"),
    ],
)
def test_hostile_result_file_is_refused(hostile_dir: Path, name: str, needle: str) -> None:
    assert_refused(invoke("compare", name), name, needle)


def test_truncated_result_file_keeps_its_whole_lines(hostile_dir: Path) -> None:
    result = invoke("compare", "truncated.jsonl", "--json")
    assert result.exit_code == 0, result.output
    assert "truncated.jsonl:2: not valid JSON (a truncated line?)" in result.stderr


# --- numbers --------------------------------------------------------------------------------


def test_infinite_duration_profile_is_refused(hostile_dir: Path) -> None:
    assert_refused(invoke("bench", "infinite-duration.yaml"), "bench.duration_s", "finite number")


def test_huge_profile_shape_gets_the_memory_check(hostile_dir: Path) -> None:
    assert_refused(invoke("run", "huge-shape.yaml"), "inputs.tensors.x.shape", "GiB")


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["bench", "--duration", "nan"], "--duration"),
        (["bench", "--duration", "inf"], "--duration"),
        (["bench", "--timeout", "nan", "-n", "1"], "--timeout"),
        (["bench", "--timeout", "1e300", "-n", "1"], "--timeout"),
        (["bench", "--until-stable", "nan"], "--until-stable"),
        (["bench", "--until-stable", "1000"], "--until-stable"),
        (["bench", "-n", "99999999999999999999"], "--iterations"),
        (["bench", "--warmup", "99999999"], "--warmup"),
        (["bench", "--threads", "1,100000"], "--threads"),
        (["bench", "--batch", "99999999999"], "--batch"),
        (["bench", "--dim", "batch=1,99999999999"], "--dim batch"),
        (["run", "--threads", "100000"], "--threads"),
        (["run", "--batch", "99999999999"], "--batch"),
        (["run", "--dim", "batch=99999999999"], "batch"),
        (["bench", "--scenario", "server", "--target-qps", "inf"], "--target-qps"),
        (["bench", "--scenario", "offline", "--min-duration", "nan"], "--min-duration"),
    ],
)
def test_absurd_numbers_are_refused_before_work(
    hostile_dir: Path, args: list[str], option: str
) -> None:
    command, *rest = args
    assert_refused(invoke(command, "model.onnx", *rest), option)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    option=st.sampled_from(["--threads", "--batch", "--iterations", "--warmup", "--timeout"]),
    text=st.one_of(
        st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e309", "99999999999999999999"]),
        st.integers(-(2**40), 2**40).map(str),
        st.floats().map(repr),
        st.text(alphabet="0123456789.-e+,", min_size=1, max_size=8),
    ),
)
def test_any_cli_number_runs_or_exits_2(hostile_dir: Path, option: str, text: str) -> None:
    """Generated option values: a real (tiny) run, or exit 2 naming the option; never a crash."""
    command = "run" if option in ("--threads", "--batch") else "bench"
    extra = [] if command == "run" else ["--in-process", "-n", "1", "--warmup", "0"]
    if option in ("--iterations", "--warmup"):
        extra = ["--in-process"] + (["--warmup", "0"] if option == "--iterations" else ["-n", "1"])
    result = invoke(command, "model.onnx", option, text, *extra)
    assert "Traceback" not in result.output and "unexpected" not in result.output
    if result.exit_code != 0:
        assert result.exit_code == 2, result.output


# --- untrusted text reaches the terminal escaped ---------------------------------------------

_RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_no_raw_control(text: str) -> None:
    found = _RAW_CONTROL.search(text)
    assert found is None, f"raw {found.group()!r} in output: {text!r}"


@pytest.mark.parametrize("json_", [False, True])
def test_profile_description_with_escapes_is_listed_escaped(hostile_dir: Path, json_: bool) -> None:
    (hostile_dir / "profiles").mkdir()
    shutil.copy(HOSTILE / "escape-description.yaml", hostile_dir / "profiles")
    result = invoke("profiles", "list", *(["--json"] if json_ else []))
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.output)
    assert "PWNED" in result.output


def test_profile_name_with_escapes_is_refused_escaped(hostile_dir: Path) -> None:
    (hostile_dir / "bad.yaml").write_text('name: "a\\e]0;PWNED\\a"\nmodel: model.onnx\n')
    result = invoke("profiles", "validate", "bad.yaml")
    assert_refused(result, "name", "\\x1b]0;PWNED\\x07")
    assert_no_raw_control(result.output)


@pytest.mark.parametrize("args", [[], ["--plot"], ["--json"], ["--csv"]])
def test_result_fields_with_escapes_are_shown_escaped(hostile_dir: Path, args: list[str]) -> None:
    result = invoke("compare", "escape-names.jsonl", *args)
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.stdout)
    assert_no_raw_control(result.stderr)


@pytest.mark.parametrize(
    ("command", "needle"), [("inspect", "\\x1b]0;PWNED\\x07"), ("run", "y\\r")]
)
def test_model_names_with_escapes_are_shown_escaped(
    hostile_dir: Path, command: str, needle: str
) -> None:
    result = invoke(command, "escape-names.onnx")
    assert result.exit_code == 0, result.output
    assert_no_raw_control(result.output)
    assert needle in result.output


# --- external data never leaves the model's folder -------------------------------------------


@pytest.fixture
def secret(hostile_dir: Path) -> Path:
    """A file outside the model's folder, big enough for the tensor that points at it."""
    outside = hostile_dir.parent / "outside.bin"
    outside.write_bytes(b"s" * 64)
    (hostile_dir / "weights.bin").symlink_to(outside)
    return outside


@pytest.fixture
def no_onnx_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if ONNX Runtime or onnx is asked to open a model: aia must refuse first."""
    import onnx
    import onnxruntime

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a model was opened: {args[:1]}")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    monkeypatch.setattr(onnx, "load", refuse)
    monkeypatch.setattr(onnx, "load_model", refuse)


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ("external-dotdot.onnx", "'../outside.bin' (it climbs out with '..')"),
        ("external-absolute.onnx", "'/etc/passwd' (an absolute path)"),
        ("external-symlink.onnx", "'weights.bin' (a link to"),
    ],
)
@pytest.mark.parametrize("command", ["inspect", "run", "bench", "profile"])
def test_external_data_outside_the_folder_is_refused_before_onnx(
    hostile_dir: Path, secret: Path, no_onnx_reads: None, command: str, model: str, needle: str
) -> None:
    assert_refused(invoke(command, model), model, needle, "outside its folder")


def test_external_data_outside_is_refused_through_a_profile(
    hostile_dir: Path, secret: Path, no_onnx_reads: None
) -> None:
    (hostile_dir / "p.yaml").write_text("name: p\nmodel: external-dotdot.onnx\n")
    assert_refused(invoke("run", "p.yaml"), "outside its folder")


def test_external_data_inside_the_folder_still_loads(hostile_dir: Path) -> None:
    import onnx

    model = onnx.load(str(hostile_dir / "model.onnx"))
    sub = hostile_dir / "inside"
    (sub / "data").mkdir(parents=True)
    onnx.save(
        model,
        str(sub / "m.onnx"),
        save_as_external_data=True,
        location="data/w.bin",
        size_threshold=0,
    )
    result = invoke("inspect", sub / "m.onnx")
    assert result.exit_code == 0, result.output
    assert "data/w.bin" in result.output
    result = invoke("run", sub / "m.onnx")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("location", ["model.onnx", "../outside.bin"])
def test_url_model_must_be_a_single_file(tmp_path: Path, location: str) -> None:
    """A downloaded model that names external data, even its own file, is refused (exit 2)."""
    import hashlib

    import onnx

    from aialliance_cli.errors import ModelError
    from aialliance_cli.models.cache import list_cache
    from aialliance_cli.models.sources import ModelSpec, resolve_model

    model = onnx.load(str(HOSTILE / "external-dotdot.onnx"), load_external_data=False)
    model.graph.initializer[0].external_data[0].value = location
    served = tmp_path / "served.onnx"
    served.write_bytes(model.SerializeToString())
    (tmp_path / "outside.bin").write_bytes(b"s" * 64)
    sha = hashlib.sha256(served.read_bytes()).hexdigest()
    spec = ModelSpec(kind="url", url=served.as_uri(), sha256=sha)
    with pytest.raises(ModelError, match="single-file|outside its folder") as err:
        resolve_model(spec, tmp_path / "cache", allow_network=True)
    assert err.value.exit_code == 2
    assert list_cache() == []


def test_bare_bench_with_a_laughs_profile_shadowing_the_default(hostile_dir: Path) -> None:
    """A bare `aia bench` loads the default profile; a hostile file in its place is refused."""
    from aialliance_cli.profiles import DEFAULT_PROFILE

    (hostile_dir / "profiles").mkdir()
    shutil.copy(
        HOSTILE / "billion-laughs.yaml", hostile_dir / "profiles" / f"{DEFAULT_PROFILE}.yaml"
    )
    start = time.monotonic()
    assert_refused(invoke("bench"), "aliases expand")
    assert time.monotonic() - start < 30


# --- generated result lines ------------------------------------------------------------------

_REAL_LINE = Path(__file__).resolve().parent.parent / "fixtures" / "results" / "silero-vad.jsonl"


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            out += _paths(v, (*prefix, i))
    return out


_odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["\x1b]0;x\x07", "[link=http://x]y", "", "NaN"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.integers(0, 80).map(lambda d: json.loads("[" * d + "]" * d) if d else []),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_result_line_is_compared_or_refused(hostile_dir: Path, data: st.DataObject) -> None:
    """Real result lines with fields replaced by odd values, cut short or nested deep:
    `aia compare` shows them or exits 2 with a message, never a traceback or 'unexpected'."""
    lines = _REAL_LINE.read_text().splitlines()[:2]
    out = []
    for line in lines:
        rec = json.loads(line)
        for _ in range(data.draw(st.integers(0, 4))):
            path = data.draw(st.sampled_from(_paths(rec)[1:]))
            node = rec
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = data.draw(_odd_values)
        text = json.dumps(rec)
        if data.draw(st.booleans()) and data.draw(st.booleans()):
            text = text[: data.draw(st.integers(0, len(text)))]
        out.append(text)
    (hostile_dir / "gen.jsonl").write_text("\n".join(out) + "\n")
    args = data.draw(st.sampled_from([[], ["--json"], ["--csv"], ["--plot"]]))
    result = invoke("compare", "gen.jsonl", *args)
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert "Error:" in result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["tune", "model.onnx", "--budget", "1e300"], "--budget"),
        (["tune", "model.onnx", "--budget", "nan"], "--budget"),
        (["fleet", "bench", "model.onnx", "--local", "100000"], "--local"),
        (["fleet", "bench", "model.onnx", "--local", "2", "--timeout", "inf"], "--timeout"),
        (["profile", "model.onnx", "--warmup", "99999999999"], "--warmup"),
        (["compare", "truncated.jsonl", "--fail-if-slower", "nan"], "--fail-if-slower"),
        (["bench", "smollm2-135m", "--random-weights", "--prompt-len", "1e9"], "--prompt-len"),
        (["bench", "smollm2-135m", "--random-weights", "--gen-len", "99999999"], "--gen-len"),
    ],
)
def test_absurd_numbers_of_other_commands_are_refused(
    hostile_dir: Path, args: list[str], option: str
) -> None:
    assert_refused(invoke(*args), option)


def test_npz_that_unpacks_past_memory_is_refused_before_reading(hostile_dir: Path) -> None:
    """npz-bomb.npz: 64 members, each declaring 4 GiB, in 8 KB of file."""
    result = invoke("run", "model.onnx", "--input", "npz-bomb.npz")
    assert_refused(result, "npz-bomb.npz", "unpacks to 256.0 GiB")


def test_real_console_script_on_hostile_files(hostile_dir: Path) -> None:
    """The installed entry point (not CliRunner): exit codes and escaping hold end to end."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}

    def aia(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", "from aialliance_cli.cli.main import main; main()", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    laughs = aia("profiles", "validate", "billion-laughs.yaml")
    assert laughs.returncode == 2 and "aliases expand" in laughs.stderr, laughs.stderr
    names = aia("compare", "escape-names.jsonl")
    assert names.returncode == 0, names.stderr
    assert_no_raw_control(names.stdout + names.stderr)
    outside = aia("inspect", "external-dotdot.onnx")
    assert outside.returncode == 2 and "outside its folder" in outside.stderr, outside.stderr
    for proc in (laughs, names, outside):
        assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr
