"""Real images and audio made into model inputs, as a profile's ``inputs.image``/``.audio`` say.

Images are decoded with Pillow (EXIF orientation applied), converted to RGB, BGR or
grey, resized with Pillow or OpenCV (whichever the model's own package uses: the
same interpolation gives the same pixels), scaled, normalised with mean/std and
laid out NCHW or NHWC with a batch axis of 1.

Audio is decoded with the standard library's ``wave`` (PCM WAV) or, when installed,
``soundfile`` (FLAC, OGG, ...), averaged to mono, resampled with the windowed-sinc
(Hann) filter that torchaudio's ``Resample`` uses by default, and cut into windows of
``window`` samples, each preceded by ``context`` samples of the one before (zeros
before the first), as Silero VAD's own wrapper feeds its model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aialliance_cli.errors import BadInputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
AUDIO_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".aiff", ".aif"})
ARRAY_SUFFIXES = frozenset({".npy", ".npz"})


def require_file(path: Path) -> None:
    """An input file the user named must be a regular file (exit 2 naming what it is)."""
    if path.is_file():
        return
    if not path.exists():
        raise BadInputError(f"input file {path} does not exist")
    raise BadInputError(f"input file {path} is not a regular file (a folder, a device or a pipe)")


def file_kind(path: Path) -> str | None:
    """``image``, ``audio``, ``array`` (.npy/.npz) or None, from the file name."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in ARRAY_SUFFIXES:
        return "array"
    return None


def input_files_in(folder: Path) -> list[Path]:
    """The images, audio and array files of a folder (not recursive), sorted by name."""
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise BadInputError(f"--input-dir {folder} {what}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and file_kind(p) is not None)
    if not files:
        kinds = sorted(IMAGE_SUFFIXES | AUDIO_SUFFIXES | ARRAY_SUFFIXES)
        raise BadInputError(
            f"--input-dir {folder} holds no input files (looked for {', '.join(kinds)})"
        )
    return files


# ----------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageSettings:
    """Plain image preprocessing (the profile's inputs.image, or one guessed from the model)."""

    library: str = "pillow"
    color: str = "rgb"
    resize_mode: str = "none"
    height: int | None = None
    width: int | None = None
    side: int | None = None
    limit: str = "min"
    multiple: int = 1
    fill: int = 114
    interpolation: str = "bilinear"
    layout: str = "nchw"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    dtype: str = "float32"

    @classmethod
    def from_profile(cls, spec: Any) -> ImageSettings:
        r = spec.resize
        resize = (
            {}
            if r is None
            else {
                "resize_mode": r.mode,
                "height": r.height,
                "width": r.width,
                "side": r.side,
                "limit": r.limit,
                "multiple": r.multiple,
                "fill": r.fill,
                "interpolation": r.interpolation,
            }
        )
        return cls(
            library=spec.library,
            color=spec.color,
            layout=spec.layout,
            scale=float(spec.scale),
            mean=tuple(spec.mean),
            std=tuple(spec.std),
            dtype=spec.dtype,
            **resize,
        )

    def describe(self) -> str:
        size = {
            "none": "size kept",
            "stretch": f"stretched to {self.height}x{self.width}",
            "letterbox": f"letterboxed into {self.height}x{self.width}",
            "limit": f"{self.limit} side {'up' if self.limit == 'min' else 'down'} to {self.side}",
        }[self.resize_mode]
        if self.multiple > 1:
            size += f", sides multiples of {self.multiple}"
        return (
            f"{self.color.upper()}, {size} ({self.library} {self.interpolation}), "
            f"x{self.scale:.6g}, mean {list(self.mean)}, std {list(self.std)}, "
            f"{self.layout.upper()} {self.dtype}"
        )


def decode_image(path: Path, color: str = "rgb") -> np.ndarray:
    """HxWx3 (RGB or BGR) or HxW (gray) uint8 pixels; EXIF orientation applied."""
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError as exc:  # pragma: no cover - pillow comes with the core
        raise BadInputError(f"reading the image {path} needs Pillow (pip install pillow)") from exc
    require_file(path)
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img) or img
            img = img.convert("L" if color == "gray" else "RGB")
            pixels = np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError:
        raise BadInputError(f"input file {path} is not an image Pillow can read") from None
    except OSError as exc:
        raise BadInputError(f"cannot read the image {path}: {exc}") from None
    if color == "bgr":
        pixels = pixels[:, :, ::-1]
    return np.ascontiguousarray(pixels)


def _target_size(h: int, w: int, s: ImageSettings) -> tuple[int, int]:
    """(height, width) after resizing, before any letterbox padding."""
    if s.resize_mode == "none":
        rh, rw = h, w
    elif s.resize_mode == "stretch":
        rh, rw = int(s.height or h), int(s.width or w)
    elif s.resize_mode == "letterbox":
        ratio = min((s.height or h) / h, (s.width or w) / w)
        rh, rw = max(1, round(h * ratio)), max(1, round(w * ratio))
    else:  # limit: the rule of PaddleOCR's and rapidocr's DetPreProcess
        side = int(s.side or max(h, w))
        if s.limit == "max":
            ratio = side / max(h, w) if max(h, w) > side else 1.0
        else:
            ratio = side / min(h, w) if min(h, w) < side else 1.0
        rh, rw = int(h * ratio), int(w * ratio)
    if s.multiple > 1 and s.resize_mode != "letterbox":
        rh = int(round(rh / s.multiple) * s.multiple)
        rw = int(round(rw / s.multiple) * s.multiple)
    if rh <= 0 or rw <= 0:
        raise BadInputError(
            f"the image ({w}x{h}) would be resized to {rw}x{rh}; it is too small for this model"
        )
    return rh, rw


def _resize(pixels: np.ndarray, size: tuple[int, int], s: ImageSettings) -> np.ndarray:
    h, w = size
    if pixels.shape[:2] == (h, w):
        return pixels
    if s.library == "opencv":
        try:
            import cv2
        except ImportError as exc:
            raise BadInputError(
                "this profile resizes images with OpenCV: pip install opencv-python-headless"
            ) from exc
        flags = {
            "bilinear": cv2.INTER_LINEAR,
            "nearest": cv2.INTER_NEAREST,
            "bicubic": cv2.INTER_CUBIC,
            "area": cv2.INTER_AREA,
        }
        return cv2.resize(pixels, (w, h), interpolation=flags[s.interpolation])
    from PIL import Image

    modes = {
        "bilinear": Image.Resampling.BILINEAR,
        "nearest": Image.Resampling.NEAREST,
        "bicubic": Image.Resampling.BICUBIC,
        "area": Image.Resampling.BOX,
    }
    return np.asarray(Image.fromarray(pixels).resize((w, h), modes[s.interpolation]))


def image_tensor(path: Path, s: ImageSettings) -> np.ndarray:
    """One image file as a batch-of-one tensor, as the settings say."""
    pixels = decode_image(path, s.color)
    h, w = pixels.shape[:2]
    pixels = _resize(pixels, _target_size(h, w, s), s)
    if s.resize_mode == "letterbox":
        th, tw = int(s.height or h), int(s.width or w)
        canvas = np.full((th, tw, *pixels.shape[2:]), s.fill, dtype=np.uint8)
        top, left = (th - pixels.shape[0]) // 2, (tw - pixels.shape[1]) // 2
        canvas[top : top + pixels.shape[0], left : left + pixels.shape[1]] = pixels
        pixels = canvas
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if s.dtype == "uint8":
        out = pixels
    else:
        mean = np.asarray(s.mean, dtype=np.float32)
        std = np.asarray(s.std, dtype=np.float32)
        out = (pixels.astype(np.float32) * np.float32(s.scale) - mean) / std
        out = out.astype(s.dtype)
    if s.layout == "nchw":
        out = out.transpose(2, 0, 1)
    return np.ascontiguousarray(out[None])


def guess_image_settings(shape: tuple[Any, ...]) -> ImageSettings | None:
    """For a model without a profile: a 4-D input read as NCHW/NHWC, sized by its fixed dims."""
    if len(shape) != 4:
        return None
    if shape[1] in (1, 3):
        layout, c, h, w = "nchw", shape[1], shape[2], shape[3]
    elif shape[3] in (1, 3):
        layout, c, h, w = "nhwc", shape[3], shape[1], shape[2]
    else:
        return None
    fixed = isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0
    return ImageSettings(
        color="gray" if c == 1 else "rgb",
        resize_mode="stretch" if fixed else "none",
        height=h if fixed else None,
        width=w if fixed else None,
        layout=layout,
    )


# ----------------------------------------------------------------------------- audio


@dataclass(frozen=True)
class AudioSettings:
    sample_rate: int
    window: int | None = None
    context: int = 0

    @classmethod
    def from_profile(cls, spec: Any) -> AudioSettings:
        return cls(sample_rate=spec.sample_rate, window=spec.window, context=spec.context)

    def describe(self) -> str:
        text = f"mono, resampled to {self.sample_rate} Hz"
        if self.window:
            text += f", windows of {self.window} samples"
            if self.context:
                text += f" after {self.context} samples of context"
        return text


def decode_audio(path: Path) -> tuple[np.ndarray, int]:
    """(samples as float32 in [-1, 1], shape (channels, n); the file's sample rate)."""
    require_file(path)
    if path.suffix.lower() in (".wav", ".wave"):
        try:
            return _decode_wav(path)
        except BadInputError:
            if not _has_soundfile():
                raise
    if not _has_soundfile():
        raise BadInputError(
            f"reading {path.suffix} audio needs soundfile (pip install soundfile); "
            "PCM .wav files are read without it"
        )
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise BadInputError(f"cannot read the audio file {path}: {exc}") from None
    return np.ascontiguousarray(data.T), int(rate)


def _has_soundfile() -> bool:
    try:
        import soundfile  # noqa: F401
    except Exception:  # ImportError, or OSError when libsndfile is missing
        return False
    return True


def _decode_wav(path: Path) -> tuple[np.ndarray, int]:
    import wave

    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
            raw = f.readframes(f.getnframes())
    except (wave.Error, EOFError) as exc:
        raise BadInputError(
            f"cannot read {path} as a PCM WAV file ({exc}); install soundfile for other encodings"
        ) from None
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        data = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    else:  # pragma: no cover - wave refuses other widths
        raise BadInputError(f"{path}: {8 * width}-bit samples are not supported")
    if data.size == 0:
        raise BadInputError(f"the audio file {path} holds no samples")
    return np.ascontiguousarray(data.reshape(-1, channels).T), rate


def resample(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    """Resample the last axis from ``orig`` to ``new`` Hz.

    The windowed-sinc filter (Hann window, 6 zero crossings, roll-off 0.99) and the
    output length of torchaudio.functional.resample's default, in NumPy.
    """
    if orig == new:
        return x.astype(np.float32, copy=False)
    gcd = math.gcd(int(orig), int(new))
    o, n = int(orig) // gcd, int(new) // gcd
    width_zc, rolloff = 6, 0.99
    base = min(o, n) * rolloff
    width = math.ceil(width_zc * o / base)
    idx = np.arange(-width, width + o, dtype=np.float64)[None, :] / o
    t = np.arange(0, -n, -1, dtype=np.float64)[:, None] / n + idx
    t = np.clip(t * base, -width_zc, width_zc)
    window = np.cos(t * math.pi / width_zc / 2) ** 2
    t *= math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = np.where(t == 0, 1.0, np.sin(t) / t)
    kernel *= window * (base / o)  # (n, 2*width + o)
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    length = flat.shape[-1]
    padded = np.pad(flat, ((0, 0), (width, width + o)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1], axis=-1)[:, ::o]
    out = np.einsum("bfk,nk->bfn", frames, kernel).reshape(flat.shape[0], -1)
    out = out[:, : math.ceil(n * length / o)]
    return out.reshape(*lead, -1).astype(np.float32)


def audio_windows(path: Path, s: AudioSettings) -> list[np.ndarray]:
    """The clip as mono float32 at the model's rate: one (1, n) array, or one per window."""
    data, rate = decode_audio(path)
    mono = data.mean(axis=0)
    mono = resample(mono, rate, s.sample_rate)
    if not s.window:
        return [mono[None, :].astype(np.float32)]
    n = len(mono)
    pad = (-n) % s.window
    mono = np.concatenate([np.zeros(s.context, np.float32), mono, np.zeros(pad, np.float32)])
    out = []
    for start in range(s.context, len(mono), s.window):
        out.append(mono[None, start - s.context : start + s.window].astype(np.float32))
    return out
