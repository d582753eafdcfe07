"""Preference pairs from an exported dataset, decoded once into a model family's latents and conditioning.

Every clip and every condition is decoded and encoded a single time when the run starts; batches are
then slices of those tensors, so no step re-reads or re-encodes video.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from tqdm import tqdm

from data_schemas import UserError
from data_schemas.constants import FPS
from media_io.codecs import read_audio, read_frames
from model_families.family import ConditionInputs, Conditioning, ModelFamily

T = TypeVar("T")
REQUIRED = ("condition_id", "chosen", "rejected", "reference_image", "audio", "chosen_video", "rejected_video")


@dataclass
class PreferenceSet:
    """Cached tensors: each clip's latents [T, ...] and each condition's conditioning, in one family's space."""

    chosen: list[str]
    rejected: list[str]
    conditions: list[str]
    weights: torch.Tensor  # [pairs]
    latents: dict[str, torch.Tensor]
    conditioning: dict[str, Conditioning]
    family: ModelFamily
    winners_only: bool = False  # SFT caches winners only; losers then come back as the winners

    def __len__(self) -> int:
        return len(self.chosen)

    def frames(self, i: int) -> int:
        """Latent frames pair i has on both sides."""
        w = self.latents[self.chosen[i]]
        return len(w) if self.winners_only else min(len(w), len(self.latents[self.rejected[i]]))

    def window(self, i: int, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor, Conditioning, torch.Tensor]:
        """(winner latents, loser latents, conditioning, weight) of pair i's latent frames [start, start + length)."""
        w = self.latents[self.chosen[i]]
        l = w if self.winners_only else self.latents[self.rejected[i]]
        first, end = self.family.video_span(start, length)
        conditioning = {k: v[first:end] if k in self.family.time_aligned else v
                        for k, v in self.conditioning[self.conditions[i]].items()}
        return w[start : start + length], l[start : start + length], conditioning, self.weights[i]

    def batch(self, rng: np.random.Generator, size: int, window: int):
        """(winner latents, loser latents, conditioning, weights) for `size` random pairs and windows."""
        length = self.family.latent_frames(self.family.usable_frames(window))
        parts = [self.window(int(i), int(rng.integers(0, self.frames(int(i)) - length + 1)), length)
                 for i in rng.integers(0, len(self), size)]
        winners, losers, conditioning, weights = zip(*parts)
        return torch.stack(winners), torch.stack(losers), stack_conditioning(conditioning), torch.stack(weights)


def stack_conditioning(items: Sequence[Conditioning]) -> Conditioning:
    """A batch of conditionings, key by key."""
    return {k: torch.stack([c[k] for c in items]) for k in items[0]}


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


def preference_set(dataset: str, family: ModelFamily, weight_by: str = "none", split: str = "train",
                   winners_only: bool = False) -> PreferenceSet:
    """Decode the split's clips and conditions once into the family's latent and conditioning space."""
    part = load_split(dataset, split)
    latents: dict[str, torch.Tensor] = {}
    conditioning: dict[str, Conditioning] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for row in tqdm(part, desc="cache latents", unit="pair"):
            for side in ("chosen", "rejected")[: 1 if winners_only else 2]:
                sha = row[side]
                if sha not in latents:
                    frames = decode_media(dataset, row[f"{side}_video"], f"{side} video", read_frames, scratch)
                    latents[sha] = family.encode_video(frames[: family.usable_frames(len(frames))])
            condition = row["condition_id"]
            if condition not in conditioning:
                image, audio, pose = condition_media(dataset, row, scratch)
                frames = family.video_span(0, len(latents[row["chosen"]]))[1]
                conditioning[condition] = family.encode_condition(
                    ConditionInputs(condition, None, image, audio, pose, FPS, frames))
    weights = {"none": [1.0] * len(part), "agreement": part["agreement"], "margin": part["margin"]}[weight_by]
    return PreferenceSet(list(part["chosen"]), list(part["rejected"]), list(part["condition_id"]),
                         torch.tensor(weights, dtype=torch.float32), latents, conditioning, family, winners_only)
