"""Image and audio preprocessing (runtime/preprocess.py) on small files made here."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from aialliance_cli.errors import BadInputError
from aialliance_cli.runtime import preprocess as P


def _wav(path: Path, data: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        if width == 1:
            raw = (np.clip(data, -1, 1) * 127 + 128).astype(np.uint8).tobytes()
        elif width == 2:
            raw = (np.clip(data, -1, 1) * 32767).astype("<i2").tobytes()
        else:  # 24-bit little endian
            v = (np.clip(data, -1, 1) * (2**23 - 1)).astype(np.int32)
            raw = np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], -1).astype(np.uint8)
            raw = raw.tobytes()
        f.writeframes(raw)
    return path


def _png(path: Path, w: int, h: int) -> Path:
    from PIL import Image

    x = np.zeros((h, w, 3), np.uint8)
    x[..., 0] = 200  # red
    x[:, : w // 2, 2] = 50
    Image.fromarray(x).save(path)
    return path


def test_file_kinds():
    assert P.file_kind(Path("a.JPG")) == "image"
    assert P.file_kind(Path("a.wav")) == "audio"
    assert P.file_kind(Path("a.npz")) == "array"
    assert P.file_kind(Path("a.txt")) is None


@pytest.mark.parametrize("width", [1, 2, 3])
def test_wav_widths_decode_to_the_same_signal(tmp_path, width):
    t = np.arange(800) / 8000
    sig = 0.5 * np.sin(2 * np.pi * 440 * t)
    data, rate = P.decode_audio(_wav(tmp_path / "a.wav", sig, 8000, width))
    assert rate == 8000 and data.shape == (1, 800)
    assert np.abs(data[0] - sig).max() < (0.02 if width == 1 else 1e-3)


def test_stereo_is_averaged_and_resampled_keeps_the_tone(tmp_path):
    rate, n = 44100, 44100
    t = np.arange(n) / rate
    left, right = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 1000 * t) * 0.5
    inter = np.stack([left, right], -1).ravel() * 0.8
    path = _wav(tmp_path / "s.wav", inter, rate, channels=2)
    (clip,) = P.audio_windows(path, P.AudioSettings(sample_rate=16000))
    assert clip.shape == (1, 16000) and clip.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(clip[0]))
    assert abs(int(np.argmax(spectrum)) - 1000) <= 1  # 1 kHz stays 1 kHz
    assert abs(np.abs(clip[0, 2000:-2000]).max() - 0.6) < 0.02  # the mean of both channels


def test_windows_carry_context(tmp_path):
    sig = np.linspace(-0.5, 0.5, 1000)
    path = _wav(tmp_path / "w.wav", sig, 16000)
    wins = P.audio_windows(path, P.AudioSettings(sample_rate=16000, window=512, context=64))
    assert [w.shape for w in wins] == [(1, 576), (1, 576)]
    assert np.all(wins[0][0, :64] == 0)  # zeros before the first window
    assert np.array_equal(wins[1][0, :64], wins[0][0, -64:])
    assert np.all(wins[1][0, 64 + 1000 - 512 :] == 0)  # the last window is padded


def test_limit_resize_rounds_to_multiples_like_paddleocr(tmp_path):
    s = P.ImageSettings(resize_mode="limit", side=736, limit="min", multiple=32)
    x = P.image_tensor(_png(tmp_path / "a.png", 640, 480), s)
    assert x.shape == (1, 3, 736, 992)  # 480 -> 736, 640 -> 981 -> 992


def test_letterbox_pads_and_bgr_nhwc_mean_std(tmp_path):
    s = P.ImageSettings(
        color="bgr",
        resize_mode="letterbox",
        height=64,
        width=64,
        fill=0,
        layout="nhwc",
        mean=(0.5,),
        std=(0.5,),
    )
    x = P.image_tensor(_png(tmp_path / "b.png", 64, 32), s)
    assert x.shape == (1, 64, 64, 3)
    assert np.allclose(x[0, 0, 0], -1.0)  # padding 0 -> (0 - 0.5) / 0.5
    red = x[0, 32, 40]  # inside the image: B, G, R
    assert np.isclose(red[2], (200 / 255 - 0.5) / 0.5, atol=1e-3)


def test_guessed_settings_read_layout_and_size():
    g = P.guess_image_settings(("N", 3, 224, 224))
    assert (g.layout, g.resize_mode, g.height, g.width) == ("nchw", "stretch", 224, 224)
    g = P.guess_image_settings((1, "h", "w", 1))
    assert (g.layout, g.color, g.resize_mode) == ("nhwc", "gray", "none")
    assert P.guess_image_settings((1, 16)) is None


def test_bad_files_are_bad_input(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(BadInputError, match="not an image"):
        P.image_tensor(tmp_path / "x.png", P.ImageSettings())
    (tmp_path / "y.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(BadInputError, match="y.wav"):
        P.decode_audio(tmp_path / "y.wav")
    with pytest.raises(BadInputError, match="does not exist"):
        P.input_files_in(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="holds no input files"):
        P.input_files_in(tmp_path / "empty")
