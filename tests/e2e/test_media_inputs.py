"""Real images and audio through the bundled ppocr-det and silero-vad profiles.

The preprocessing must give the tensors the models' own packages give (rapidocr's
DetPreProcess, silero_vad's OnnxWrapper), and bench must rotate through a folder.
"""

from __future__ import annotations

import json
import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aialliance_cli.cli.main import app
from aialliance_cli.cli.samples import sample_path

runner = CliRunner()
IMAGE = sample_path("ocr-text.png")
SPEECH = sample_path("speech.wav")


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def as_json(r):
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_samples_are_shipped_and_listed():
    assert IMAGE.is_file() and SPEECH.is_file()
    r = invoke("samples")
    assert r.exit_code == 0 and "ocr-text.png" in r.stdout and "speech.wav" in r.stdout
    assert invoke("samples", "speech.wav").stdout.strip() == str(SPEECH)
    assert invoke("samples", "nope").exit_code == 2


def test_ppocr_det_image_matches_rapidocr_preprocessing():
    pytest.importorskip("rapidocr")
    from rapidocr.ch_ppocr_det.utils import DetPreProcess
    from rapidocr.utils.load_image import LoadImage

    from aialliance_cli.profiles.loader import load_profile
    from aialliance_cli.runtime import preprocess as P

    spec = load_profile("ppocr-det").profile.inputs.image
    ours = P.image_tensor(IMAGE, P.ImageSettings.from_profile(spec))
    theirs = DetPreProcess(736, "min", [0.5] * 3, [0.5] * 3)(LoadImage()(str(IMAGE)))
    assert ours.shape == theirs.shape == (1, 3, 736, 992)
    assert np.array_equal(ours, theirs)


def test_run_ppocr_det_on_an_image_finds_text(tmp_path):
    out = tmp_path / "o.npz"
    data = as_json(invoke("run", "ppocr-det", "--input", IMAGE, "--json", "--save", out))
    assert data["settings"]["input_files"] == [str(IMAGE)]
    assert "BGR" in data["settings"]["preprocess"]
    assert data["metrics"]["outputs"]["fetch_name_0"]["shape"] == [1, 1, 736, 992]
    prob = np.load(out)["fetch_name_0"][0, 0]
    # Text lines light up, the empty right margin and the bottom do not.
    assert prob[60:120, 60:400].max() > 0.9
    assert prob[650:, :].max() < 0.3


def test_run_silero_vad_on_speech_matches_the_package_wrapper(tmp_path):
    torch = pytest.importorskip("torch")
    silero = pytest.importorskip("silero_vad.utils_vad")
    from aialliance_cli.runtime import preprocess as P
    from aialliance_cli.runtime.api import prepare_target

    out = tmp_path / "vad.npz"
    data = as_json(invoke("run", "silero-vad", "--input", SPEECH, "--json", "--save", out))
    ours = np.load(out)["output"].ravel()
    assert data["metrics"]["windows"] == len(ours) > 50
    assert data["metrics"]["outputs"]["output"]["shape"] == [len(ours), 1]
    # The package's own streaming loop over the same 16 kHz waveform.
    (clip,) = P.audio_windows(SPEECH, P.AudioSettings(sample_rate=16000))
    model = silero.OnnxWrapper(str(prepare_target("silero-vad").model_path), force_onnx_cpu=True)
    theirs = model.audio_forward(torch.from_numpy(clip), 16000).numpy().ravel()
    assert np.allclose(ours, theirs, atol=1e-4)
    assert ours[:5].max() < 0.2 and ours[-5:].max() < 0.2  # silence at both ends
    assert np.mean(ours[len(ours) // 3 : 2 * len(ours) // 3] > 0.5) > 0.8  # speech between


def test_bench_rotates_through_an_input_dir(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(SPEECH, folder / "a.wav")
    with wave.open(str(folder / "b.wav"), "wb") as f:  # 0.1 s of a 16 kHz tone
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes((np.sin(np.arange(1600) / 5) * 8000).astype("<i2").tobytes())
    data = as_json(
        invoke("bench", "silero-vad", "--input-dir", folder, "-n", "3", "--warmup", "0", "--json")
    )
    (rec,) = data
    assert rec["status"] == "ok", rec
    files = rec["settings"]["input_files"]
    assert [Path(f).name for f in files] == ["a.wav", "b.wav"]
    assert rec["settings"]["input_sets"] > 50  # every window of both clips


def _image_model(path: Path) -> Path:
    from onnx import TensorProto, helper

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from helpers import save

    x = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["n", 3, 1, 1])
    node = helper.make_node("ReduceMean", ["pixels"], ["mean"], axes=[2, 3], keepdims=1)
    graph = helper.make_graph([node], "m", [x], [y])
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_image_without_a_profile_is_read_as_rgb_with_a_warning(tmp_path):
    from PIL import Image

    model = _image_model(tmp_path / "m.onnx")
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "red.png")
    r = invoke("run", model, "--input", tmp_path / "red.png", "--json")
    data = as_json(r)
    assert any("declares no inputs.image" in w for w in data["warnings"])
    assert data["metrics"]["outputs"]["mean"]["max"] == pytest.approx(1.0)
    assert data["settings"]["dims"] == {"h": 30, "n": 1, "w": 40}
    human = invoke("run", model, "--input", tmp_path / "red.png")
    assert human.exit_code == 0 and "declares no inputs.image" in human.stderr


def test_images_of_two_sizes_warn_that_bench_mixes_them(tmp_path):
    from PIL import Image

    model = _image_model(tmp_path / "m.onnx")
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (40, 30)).save(folder / "a.png")
    Image.new("RGB", (64, 48)).save(folder / "b.jpg")
    r = invoke("bench", model, "--input-dir", folder, "-n", "4", "--warmup", "0", "--json")
    data = as_json(r)
    (rec,) = data
    assert rec["settings"]["input_sets"] == 2
    assert any("differ in size" in w for w in rec["warnings"])


@pytest.mark.parametrize(
    ("target", "file", "needle"),
    [
        ("silero-vad", "junk.png", "no 4-D float input"),
        ("ppocr-det", "junk.png", "not an image"),
        ("ppocr-det", "speech.wav", "declares no inputs.audio"),
    ],
)
def test_bad_media_inputs_exit_2(tmp_path, target, file, needle):
    path = tmp_path / file
    if file == "junk.png":
        path.write_bytes(b"junk")
    else:
        shutil.copy(SPEECH, path)
    r = invoke("run", target, "--input", path)
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "Traceback" not in r.output
