"""The embedded world: procedural talking-portrait conditions and their ground-truth and degraded clips."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import Literal, get_args
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_schemas.constants import FPS, SAMPLE_RATE
from media_io.codecs import write_audio, write_image, write_video
from world.face import FaceState, FaceStyle, random_style, render_face
from world.motion import blink_track, pose_track
from world.speech import loudness_per_frame, synthesize_speech

WORLD_VERSION = "1"
Degradation = Literal["shift", "frozen_mouth", "jitter"]
DEGRADATIONS: tuple[str, ...] = get_args(Degradation)
MANIFEST_COLUMNS = (
    "condition_id", "clip", "reference_image", "audio", "pose", "text", "generator", "generator_version", "seed",
    "params",
)


@dataclass(frozen=True)
class WorldCondition:
    """Everything needed to render any clip of one condition."""

    condition_id: str
    style: FaceStyle
    audio: np.ndarray  # float32 mono at SAMPLE_RATE
    pose: np.ndarray  # float32 [frames, 3]
    blinks: np.ndarray  # float32 [frames]
    mouth: np.ndarray  # float32 [frames]: the opening that follows the audio
    size: int

    @property
    def frames(self) -> int:
        return len(self.mouth)


def make_condition(seed: int, index: int, size: int = 128, seconds: float = 4.0) -> WorldCondition:
    """Condition `index` of the world with `seed`; the same arguments always give the same condition."""
    rng = np.random.default_rng([seed, index])
    frames = int(round(seconds * FPS))
    audio = synthesize_speech(rng, seconds, SAMPLE_RATE)
    return WorldCondition(
        condition_id=f"w{seed}-{index:04d}",
        style=random_style(rng),
        audio=audio,
        pose=pose_track(rng, frames, FPS),
        blinks=blink_track(rng, frames, FPS),
        mouth=loudness_per_frame(audio, SAMPLE_RATE, FPS, frames),
        size=size,
    )


def reference_image(condition: WorldCondition) -> np.ndarray:
    """The reference portrait: the face at rest, looking straight ahead."""
    return render_face(condition.style, FaceState(), condition.size)


def render_clip(
    condition: WorldCondition, degradation: str | None = None, shift_frames: int = 4, seed: int = 0
) -> np.ndarray:
    """Frames uint8 [T, H, W, 3] of the condition, in sync, or with one named degradation."""
    mouth, pose = condition.mouth, condition.pose
    shifts = np.zeros((condition.frames, 2), np.float32)
    if degradation == "shift":  # the mouth lags the audio by shift_frames
        mouth = np.concatenate([np.full(shift_frames, mouth[0]), mouth])[: condition.frames]
    elif degradation == "frozen_mouth":
        mouth = np.full_like(mouth, 0.05)
    elif degradation == "jitter":
        rng = np.random.default_rng([seed, 7])
        shifts = rng.normal(0, 1.5 * condition.size / 128, shifts.shape).astype(np.float32)
        pose = pose + rng.normal(0, 0.03, pose.shape).astype(np.float32)
    elif degradation is not None:
        raise ValueError(f"unknown degradation {degradation!r}; choose from {', '.join(DEGRADATIONS)}")
    return np.stack([
        render_face(
            condition.style,
            FaceState(mouth_open=float(mouth[t]), eyes_closed=float(condition.blinks[t]), yaw=float(pose[t, 0]),
                      pitch=float(pose[t, 1]), roll=float(pose[t, 2]), shift_x=float(shifts[t, 0]),
                      shift_y=float(shifts[t, 1])),
            condition.size,
        )
        for t in range(condition.frames)
    ])


def build_world(
    out: Path,
    conditions: int,
    seed: int,
    size: int = 128,
    seconds: float = 4.0,
    degradations: tuple[str, ...] = DEGRADATIONS,
    shift_frames: int = 4,
) -> Path:
    """Render the world into `out` and write `out/manifest.csv` in `pairs ingest` format; returns the manifest."""
    out = Path(out)
    rows = []
    for index in tqdm(range(conditions), desc="world", unit="condition"):
        condition = make_condition(seed, index, size, seconds)
        folder = out / condition.condition_id
        write_image(folder / "reference.png", reference_image(condition))
        write_audio(folder / "audio.wav", condition.audio)
        np.save(folder / "pose.npy", condition.pose)
        for degradation in (None, *degradations):
            name = degradation or "in_sync"
            frames = render_clip(condition, degradation, shift_frames, seed)
            write_video(folder / f"{name}.mp4", frames, FPS, condition.audio)
            params = {"degradation": degradation, "world_seed": seed}
            if degradation == "shift":
                params["shift_frames"] = shift_frames
            rows.append({
                "condition_id": condition.condition_id,
                "clip": f"{condition.condition_id}/{name}.mp4",
                "reference_image": f"{condition.condition_id}/reference.png",
                "audio": f"{condition.condition_id}/audio.wav",
                "pose": f"{condition.condition_id}/pose.npy",
                "text": "",
                "generator": "world",
                "generator_version": WORLD_VERSION,
                "seed": index,
                "params": json.dumps(params, sort_keys=True),
            })
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest
