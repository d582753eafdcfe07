"""Ground-truth training clips from the embedded world, held in memory as frames + motion features."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_schemas import UserError
from media_io.codecs import read_audio, read_frames, read_image, resize_square
from data_schemas.constants import FPS
from world.build import make_condition, reference_image, render_clip
from model_families.embedded.motion_features import motion_features


@dataclass(frozen=True)
class ClipSet:
    """N clips of F frames: frames uint8 [N, F, S, S, 3], references [N, S, S, 3], motion [N, F, D]."""

    frames: np.ndarray
    references: np.ndarray
    motion: np.ndarray

    def batch(self, rng: np.random.Generator, size: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A random batch of `window`-frame windows: (frames, references, motion)."""
        clips = rng.integers(0, len(self.frames), size)
        starts = rng.integers(0, self.frames.shape[1] - window + 1, size)
        frames = np.stack([self.frames[c, s : s + window] for c, s in zip(clips, starts)])
        motion = np.stack([self.motion[c, s : s + window] for c, s in zip(clips, starts)])
        return frames, self.references[clips], motion


def generated_clips(conditions: int, seed: int, size: int, seconds: float) -> ClipSet:
    """Render `conditions` in-sync world clips directly at the model's size."""
    frames, refs, motion = [], [], []
    for index in tqdm(range(conditions), desc="world", unit="clip"):
        condition = make_condition(seed, index, size, seconds)
        frames.append(render_clip(condition))
        refs.append(reference_image(condition))
        motion.append(motion_features(condition.audio, condition.pose, FPS, condition.frames))
    return ClipSet(np.stack(frames), np.stack(refs), np.stack(motion))


def world_clips(world: Path, size: int) -> ClipSet:
    """The in-sync clips of a world folder written by `pairs world`, resized to the model's size."""
    manifest = Path(world) / "manifest.csv"
    if not manifest.is_file():
        raise UserError(f"{world}: no manifest.csv; render a world with `pairs world --out {world}`")
    rows = [r for r in csv.DictReader(open(manifest, encoding="utf-8"))
            if json.loads(r.get("params") or "{}").get("degradation") is None]
    if not rows:
        raise UserError(f"{manifest}: no in-sync clips (params.degradation null) to train on")
    frames, refs, motion = [], [], []
    for row in tqdm(rows, desc="read world", unit="clip"):
        clip = read_frames(world / row["clip"])
        pose = np.load(world / row["pose"]) if row.get("pose") else None
        frames.append(resize_square(clip, size))
        refs.append(resize_square(read_image(world / row["reference_image"]), size))
        motion.append(motion_features(read_audio(world / row["audio"]), pose, FPS, len(clip)))
    length = min(len(f) for f in frames)
    return ClipSet(np.stack([f[:length] for f in frames]), np.stack(refs), np.stack([m[:length] for m in motion]))
