"""How the sample inputs in this folder were made (run it to remake them).

- ``ocr-text.png``: 640x480 RGB, dark text on a light background shaded left to right,
  drawn with Pillow's bundled font (``ImageFont.load_default(size=...)``), slightly blurred.
  A stand-in for a photo of a printed page: PP-OCR's detector finds its text lines.
- ``speech.wav``: 16-bit mono PCM at 22050 Hz, 0.4 s of silence, the sentence below
  spoken by eSpeak NG 1.51 (Debian package ``espeak-ng``, voice ``en``), then 0.4 s of
  silence. Synthetic but real speech: Silero VAD marks the middle as speech; the rate is
  not 16 kHz, so aia's resampling is exercised too.

Usage: ``python -m aialliance_cli.samples.make_samples [FOLDER]`` (needs espeak-ng).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

SENTENCE = "aia runs open models on ONNX Runtime."
LINES = [
    "AIA SAMPLE PAGE",
    "Hardware-aware runs of open models",
    "on ONNX Runtime: detect, run, bench.",
    "PP-OCR finds these lines of text.",
    "0123456789  ABCDEFG  nopqrstuv",
]


def make_image(path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    shade = (232 + np.linspace(0, 16, 640)[None, :, None] // 4 * 4).repeat(480, axis=0)
    img = Image.fromarray(np.repeat(shade, 3, axis=2).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    y = 40
    for i, line in enumerate(LINES):
        font = ImageFont.load_default(size=40 if i == 0 else 30)
        draw.text((40, y), line, fill=(25, 25, 35), font=font)
        y += 80
    img = img.filter(ImageFilter.GaussianBlur(0.5))
    img.save(path, optimize=True)


def make_speech(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-w", str(raw), SENTENCE], check=True)
        with wave.open(str(raw), "rb") as f:
            rate, width = f.getframerate(), f.getsampwidth()
            data = np.frombuffer(f.readframes(f.getnframes()), "<i2")
    assert width == 2
    silence = np.zeros(int(0.4 * rate), np.int16)
    out = np.concatenate([silence, data, silence])
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(out.tobytes())


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    make_image(folder / "ocr-text.png")
    make_speech(folder / "speech.wav")
