"""All video, audio and image I/O: probe, read frames, read audio at 16 kHz, write browser-playable mp4."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from data_schemas import UserError
from data_schemas.constants import SAMPLE_RATE



@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds, measured by decoding it."""

    fps: float
    frames: int
    width: int
    height: int
    duration: float
    has_audio: bool
    sample_rate: int | None


def _open(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path")
    try:
        return av.open(str(path))
    except av.error.EOFError:
        raise UserError(f"{path}: truncated (the file ends early); re-export or re-copy it") from None
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable media file ({_reason(exc)}); re-export it as mp4") from None


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def probe(path: Path) -> MediaInfo:
    """Decode the whole video stream to measure it; a truncated or corrupt file raises UserError."""
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise UserError(f"{path}: no video stream; give a video file")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        rate = video.average_rate or video.guessed_rate
        frames = 0
        try:
            for frame in container.decode(video=0):
                frames += 1
                width, height = frame.width, frame.height
        except av.error.FFmpegError as exc:
            raise UserError(f"{path}: corrupt or truncated video ({_reason(exc)}); re-export it") from None
        if frames == 0:
            raise UserError(f"{path}: the video has 0 frames; re-export it")
        if not rate:
            raise UserError(f"{path}: frame rate unknown; re-export with a constant frame rate")
        fps = float(rate)
        declared = video.frames
        if declared and frames < declared:
            raise UserError(f"{path}: truncated ({frames} of {declared} frames decode); re-export it")
        return MediaInfo(
            fps=fps,
            frames=frames,
            width=width,
            height=height,
            duration=frames / fps,
            has_audio=audio is not None,
            sample_rate=audio.rate if audio is not None else None,
        )


def read_frames(path: Path) -> np.ndarray:
    """All video frames as uint8 RGB, shape [frames, height, width, 3]."""
    path = Path(path)
    with _open(path) as container:
        try:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        except av.error.FFmpegError as exc:
            raise UserError(f"{path}: corrupt or truncated video ({_reason(exc)}); re-export it") from None
    if not frames:
        raise UserError(f"{path}: the video has 0 frames; re-export it")
    return np.stack(frames)


def read_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The first audio track, resampled to mono float32 at `sample_rate` Hz."""
    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            raise UserError(f"{path}: no audio track; give a file with sound or mux the condition's audio in")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        try:
            for frame in container.decode(audio=0):
                chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(frame))
            chunks.extend(r.to_ndarray().reshape(-1) for r in resampler.resample(None))
        except av.error.FFmpegError as exc:
            raise UserError(f"{path}: corrupt audio ({_reason(exc)}); re-export it") from None
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> None:
    """Write uint8 RGB frames [T, H, W, 3] (H, W even) as H.264 + AAC mp4 that browsers play."""
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 needs even frame sizes, got {width}x{height}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # x264's macroblock-tree rate control gives different bytes run to run on high-motion clips;
        # without it the same frames always encode to the same file (and so the same sha256).
        video.options = {"crf": "18", "preset": "veryfast", "x264-params": "mbtree=0"}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate, layout="mono")
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        if sound is not None:
            _encode_audio(container, sound, audio, sample_rate)


def write_audio(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono float audio as 16-bit PCM WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=sample_rate, layout="mono")
        _encode_audio(container, stream, audio, sample_rate)


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    samples = np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0)
    # AAC takes fixed-size frames; PCM takes any size.
    chunk = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    for start in range(0, len(samples), chunk):
        part = samples[start : start + chunk]
        if fmt == "s16":
            frame = av.AudioFrame.from_ndarray((part * 32767).astype(np.int16)[None, :], format="s16", layout="mono")
        else:
            frame = av.AudioFrame.from_ndarray(part[None, :], format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def read_image(path: Path) -> np.ndarray:
    """An image as uint8 RGB [H, W, 3]."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{path}: not a readable image ({exc}); give a PNG or JPEG") from None


def write_image(path: Path, image: np.ndarray) -> None:
    """Write uint8 RGB [H, W, 3] as PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


def resize_square(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 [..., H, W, 3] images to [..., size, size, 3] (area filter)."""
    if images.shape[-3:-1] == (size, size):
        return images
    flat = images.reshape(-1, *images.shape[-3:])
    out = np.stack([cv2.resize(i, (size, size), interpolation=cv2.INTER_AREA) for i in flat])
    return out.reshape(*images.shape[:-3], size, size, 3)
