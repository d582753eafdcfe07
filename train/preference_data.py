"""Preference pairs from an exported dataset, decoded once into latents and motion features.

Every clip and every condition is decoded and encoded a single time when the run starts; batches are
then slices of those tensors, so no step re-reads or re-encodes video.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from tqdm import tqdm

from data_schemas import UserError
from pairs.media import read_audio, read_frames, resize_square
from train.motion_features import motion_features
from train.pipeline import EmbeddedPipeline

T = TypeVar("T")
REQUIRED = ("condition_id", "chosen", "rejected", "reference_image", "audio", "chosen_video", "rejected_video")
FPS = 25.0


@dataclass
class PreferenceSet:
    """Cached tensors: latents per clip [T, C, h, w], reference latent and motion [F, D] per condition."""

    chosen: list[str]
    rejected: list[str]
    conditions: list[str]
    weights: torch.Tensor  # [pairs]
    latents: dict[str, torch.Tensor]
    references: dict[str, torch.Tensor]
    motion: dict[str, torch.Tensor]
    rho: int
    winners_only: bool = False  # SFT caches winners only; losers then come back as the winners

    def __len__(self) -> int:
        return len(self.chosen)

    def frames(self, i: int) -> int:
        """Latent frames pair i has on both sides."""
        w = self.latents[self.chosen[i]]
        return len(w) if self.winners_only else min(len(w), len(self.latents[self.rejected[i]]))

    def window(self, i: int, start: int, latent_window: int) -> tuple[torch.Tensor, ...]:
        """(winner latents, loser latents, reference, motion, weight) of pair i from latent frame `start`."""
        w = self.latents[self.chosen[i]]
        l = w if self.winners_only else self.latents[self.rejected[i]]
        condition = self.conditions[i]
        return (w[start : start + latent_window], l[start : start + latent_window], self.references[condition],
                self.motion[condition][start * self.rho : (start + latent_window) * self.rho], self.weights[i])

    def batch(self, rng: np.random.Generator, size: int, window: int):
        """(winner latents, loser latents, references, motion, weights) for `size` random pairs and windows."""
        latent_window = window // self.rho
        parts = [self.window(int(i), int(rng.integers(0, self.frames(int(i)) - latent_window + 1)), latent_window)
                 for i in rng.integers(0, len(self), size)]
        return tuple(torch.stack(part) for part in zip(*parts))


def load_split(dataset: str, split: str = "train"):
    """One split of an exported dataset (a folder) or a Hub dataset id."""
    import datasets

    try:
        data = datasets.load_from_disk(dataset) if Path(dataset).is_dir() else datasets.load_dataset(dataset)
    except Exception as exc:  # noqa: BLE001 - missing folders, bad ids and offline hubs alike
        raise UserError(f"--dataset {dataset}: cannot load ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                        "give a folder written by `pairs export`") from None
    if split not in data:
        raise UserError(f"--dataset {dataset}: no {split!r} split (has {', '.join(data)}); export with `pairs export`")
    part = data[split]
    missing = [c for c in REQUIRED if c not in part.column_names]
    if missing:
        raise UserError(f"--dataset {dataset}: missing columns {', '.join(missing)}; re-export with `pairs export`")
    return part


def media_bytes(dataset: str, value: dict | None, what: str) -> bytes:
    if not value:
        raise UserError(f"--dataset {dataset}: a row has no {what}; re-export with `pairs export`")
    if value.get("bytes"):
        return value["bytes"]
    path = Path(dataset) / (value.get("path") or "")
    if not path.is_file():
        raise UserError(f"--dataset {dataset}: {what} file {path} not found; keep the exported media/ folder")
    return path.read_bytes()


def decode_media(dataset: str, value: dict | None, what: str, reader: Callable[[Path], T], scratch: Path) -> T:
    """A media column (embedded bytes or a path beside the dataset) decoded by `reader` via a scratch file."""
    path = Path(scratch) / what.replace(" ", "_")
    path.write_bytes(media_bytes(dataset, value, what))
    try:
        return reader(path)
    except UserError as exc:
        raise UserError(f"--dataset {dataset}: unreadable {what} ({exc}); re-export it") from None


def condition_media(dataset: str, row: dict, scratch: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A row's condition: reference image (RGB), audio (16 kHz mono) and pose track (or None)."""
    audio = decode_media(dataset, row["audio"], "audio", read_audio, scratch)
    pose = decode_media(dataset, row["pose"], "pose", lambda p: np.load(p, allow_pickle=False),
                        scratch) if row.get("pose") else None
    return np.asarray(row["reference_image"].convert("RGB")), audio, pose


def preference_set(dataset: str, pipeline: EmbeddedPipeline, weight_by: str = "none", split: str = "train",
                   winners_only: bool = False) -> PreferenceSet:
    """Decode the split's clips and conditions once into the model's latent and motion space."""
    part = load_split(dataset, split)
    size, rho = pipeline.size, pipeline.denoiser.config.rho
    latents: dict[str, torch.Tensor] = {}
    references: dict[str, torch.Tensor] = {}
    motion: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for row in tqdm(part, desc="cache latents", unit="pair"):
            for side in ("chosen", "rejected")[: 1 if winners_only else 2]:
                sha = row[side]
                if sha not in latents:
                    frames = decode_media(dataset, row[f"{side}_video"], f"{side} video", read_frames, scratch)
                    frames = resize_square(frames, size)[: len(frames) // rho * rho]
                    latents[sha] = pipeline.encode(frames[None])[0]
            condition = row["condition_id"]
            if condition not in references:
                image, audio, pose = condition_media(dataset, row, scratch)
                references[condition] = pipeline.reference_latent(resize_square(image, size)[None])[0]
                frames = len(latents[row["chosen"]]) * rho
                motion[condition] = torch.from_numpy(motion_features(audio, pose, FPS, frames))
    weights = {"none": [1.0] * len(part), "agreement": part["agreement"], "margin": part["margin"]}[weight_by]
    return PreferenceSet(list(part["chosen"]), list(part["rejected"]), list(part["condition_id"]),
                         torch.tensor(weights, dtype=torch.float32), latents, references, motion, rho, winners_only)
