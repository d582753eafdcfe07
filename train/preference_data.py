"""Preference pairs from an exported dataset, decoded once into a model family's latents and conditioning.

Every clip and every condition is decoded and encoded a single time, when the run starts or beforehand by
`train cache` (train/latent_cache.py); batches are then slices of those tensors, so no step re-reads or
re-encodes video.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from tqdm import tqdm

from data_schemas import UserError
from data_schemas.constants import FPS
from data_schemas.dataset import TRAINING_COLUMNS, open_export
from media_io.codecs import read_audio, read_frames
from model_families.family import ConditionInputs, Conditioning, ModelFamily
from train.frame_weights import dense_frame_weights, latent_frame_coverage
from train.latent_cache import open_cache

T = TypeVar("T")
@dataclass
class PreferenceSet:
    """Cached tensors: each clip's latents [T, ...] and each condition's conditioning, in one family's space."""

    chosen: list[str]
    rejected: list[str]
    conditions: list[str]
    weights: torch.Tensor  # [pairs]
    latents: Mapping[str, torch.Tensor]  # a dict, or a memory-mapped cache (train.latent_cache)
    conditioning: Mapping[str, Conditioning]
    family: ModelFamily
    winners_only: bool = False  # SFT caches winners only; losers then come back as the winners
    preference: torch.Tensor | None = None  # [pairs] probability that the winner is better (default 1)
    marks: tuple[list, list] | None = None  # (chosen_marks, rejected_marks) per pair: spans in seconds
    dense_weight: float | None = None  # λ of train.frame_weights; None: every latent frame counts the same
    _frames: dict[int, int] = field(default_factory=dict, repr=False)  # pair → frames(), as first read
    _coverage: dict[int, tuple] = field(default_factory=dict, repr=False)  # pair → its marks' latent frame coverage

    def __len__(self) -> int:
        return len(self.chosen)

    def frames(self, i: int) -> int:
        """Latent frames pair i has on both sides (read once: a memory-mapped cache loads a tensor per lookup)."""
        if i not in self._frames:
            w = self.latents[self.chosen[i]]
            self._frames[i] = len(w) if self.winners_only else min(len(w), len(self.latents[self.rejected[i]]))
        return self._frames[i]

    def window(self, i: int, start: int, length: int) -> tuple[torch.Tensor, torch.Tensor, Conditioning, torch.Tensor]:
        """(winner latents, loser latents, conditioning, weight) of pair i's latent frames [start, start + length)."""
        w = self.latents[self.chosen[i]]
        l = w if self.winners_only else self.latents[self.rejected[i]]
        first, end = self.family.video_span(start, length)
        conditioning = {k: v[first:end] if k in self.family.time_aligned else v
                        for k, v in self.conditioning[self.conditions[i]].items()}
        return w[start : start + length], l[start : start + length], conditioning, self.weights[i]

    def frame_weights(self, i: int, start: int, length: int) -> torch.Tensor:
        """[length]: the --dense weight of each latent frame of pair i's window (train.frame_weights)."""
        if i not in self._coverage:  # all of the pair's latent frames, once; each window slices them
            self._coverage[i] = tuple(latent_frame_coverage(sides[i] or [], self.family, 0, self.frames(i))
                                      for sides in self.marks)
        chosen, rejected = (coverage[start : start + length] for coverage in self._coverage[i])
        return dense_frame_weights(chosen, rejected, self.dense_weight)

    def batch(self, rng: np.random.Generator, size: int, window: int):
        """(winner latents, loser latents, conditioning, weights, preference probabilities, per-latent-frame
        weights [size, frames] or None without --dense) for `size` random pairs and windows."""
        length = self.family.latent_frames(self.family.usable_frames(window))
        pairs = [int(i) for i in rng.integers(0, len(self), size)]
        first, end = self.family.video_span(0, length)
        later = self.family.video_span(1, length)
        if end - first == later[1] - later[0]:
            starts = [int(rng.integers(0, self.frames(i) - length + 1)) for i in pairs]
        else:  # a causal VAE (wan-audio): windows at latent frame 0 span fewer video frames; keep a batch alike
            longer = all(self.frames(i) > length for i in pairs)
            from_first = not longer or int(rng.integers(0, 2)) == 0
            starts = [0 if from_first else int(rng.integers(1, self.frames(i) - length + 1)) for i in pairs]
        parts = [self.window(i, start, length) for i, start in zip(pairs, starts)]
        winners, losers, conditioning, weights = zip(*parts)
        preference = torch.ones(size) if self.preference is None else self.preference[pairs]
        frame_weights = None if self.dense_weight is None else torch.stack(
            [self.frame_weights(i, start, length) for i, start in zip(pairs, starts)])
        return (torch.stack(winners), torch.stack(losers), stack_conditioning(conditioning), torch.stack(weights),
                preference, frame_weights)


def stack_conditioning(items: Sequence[Conditioning]) -> Conditioning:
    """A batch of conditionings, key by key."""
    return {k: torch.stack([c[k] for c in items]) for k in items[0]}


FILE_SUFFIXES = (".parquet", ".arrow", ".json", ".jsonl", ".csv")  # what a dataset path, never a Hub id, ends with


def load_split(dataset: str, split: str = "train"):
    """One split of an exported dataset (a folder, Arrow or Parquet shards) or a Hub dataset id, memory-mapped:
    columns and rows are read when asked for, so media bytes are never all in memory at once."""
    import datasets

    local = Path(dataset)
    if local.is_file():
        raise UserError(f"--dataset {dataset}: a file; give the folder `pairs export --to-hf` wrote (pairs.parquet "
                        "from `pairs build` is its input, not a dataset)")
    # A path that does not exist is not looked up on the Hub: an owner/name id has at most one slash, starts with
    # neither ".", "/" nor "~", and does not end like a file (ids may hold dots: owner/pairs.v2).
    if not local.is_dir() and (dataset.startswith((".", "/", "~")) or dataset.count("/") > 1
                               or local.suffix.lower() in FILE_SUFFIXES):
        raise UserError(f"--dataset {dataset}: no such folder; give the folder `pairs export --to-hf` wrote")
    try:
        data = open_export(dataset) if local.is_dir() else datasets.load_dataset(dataset)
    except Exception as exc:  # noqa: BLE001 - missing folders, bad ids and offline hubs alike
        raise UserError(f"--dataset {dataset}: cannot load ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                        "give a folder written by `pairs export`") from None
    if split not in data:
        raise UserError(f"--dataset {dataset}: no {split!r} split (has {', '.join(data)}); export with `pairs export`")
    part = data[split]
    missing = [c for c in TRAINING_COLUMNS if c not in part.column_names]
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


def encode_rows(dataset: str, rows, family: ModelFamily, clips: MutableMapping, conditions: MutableMapping,
                winners_only: bool = False) -> None:
    """Encode every clip and condition of `rows` not yet in `clips` / `conditions` (a dict, or a cache writer)."""
    sides = ("chosen", "rejected")[: 1 if winners_only else 2]
    # From the key columns alone: a row read decodes its media, so rows already encoded are never read.
    keys = zip(*(rows[side] for side in sides), rows["condition_id"])
    rows = rows.select([i for i, (*shas, condition) in enumerate(keys)
                        if condition not in conditions or any(sha not in clips for sha in shas)])
    with tempfile.TemporaryDirectory() as scratch:
        for row in tqdm(rows, desc="cache latents", unit="pair"):
            for side in sides:
                sha = row[side]
                if sha not in clips:
                    frames = decode_media(dataset, row[f"{side}_video"], f"{side} video", read_frames, scratch)
                    clips[sha] = family.encode_video(frames[: family.usable_frames(len(frames))])
            condition = row["condition_id"]
            if condition not in conditions:
                image, audio, pose = condition_media(dataset, row, scratch)
                frames = family.video_span(0, len(clips[row["chosen"]]))[1]
                conditions[condition] = family.encode_condition(
                    ConditionInputs(condition, None, image, audio, pose, FPS, frames))


def preference_probability(part) -> list[float]:
    """Each pair's probability that its winner is better, from the votes: for_winner / (for_winner + for_loser).

    A human pair's `agreement` is for_winner / counted and its `margin` (for_winner − for_loser) / counted
    (pairs.preferences.aggregate; with `--ties half` a tie vote adds half its weight to each side), so the share
    is agreement / (2·agreement − margin), both-bad votes left out. A ranking pair's `agreement` is already the
    posterior's probability of its order. Rating and auto pairs count as sure (1).
    """
    shares = []
    for source, agreement, margin in zip(part["source"], part["agreement"], part["margin"]):
        if source == "ranking" and agreement is not None:
            shares.append(agreement)
            continue
        decisive = 2 * agreement - margin if source == "human" and agreement is not None and margin is not None else 0
        shares.append(min(1.0, agreement / decisive) if decisive > 0 else 1.0)
    return shares


def preference_set(dataset: str, family: ModelFamily, weight_by: str = "none", split: str = "train",
                   winners_only: bool = False, cache: Path | None = None, labels: str = "hard",
                   dense_weight: float | None = None) -> PreferenceSet:
    """The split's clips and conditions in the family's latent and conditioning space: encoded once here, in
    memory, or read memory-mapped from a `train cache` folder. With `dense_weight` (λ), batches carry the
    per-latent-frame weights of the pairs' segment marks."""
    part = load_split(dataset, split)
    marks = None
    if dense_weight is not None:
        if not {"chosen_marks", "rejected_marks"} <= set(part.column_names):
            raise UserError(f"--dense: --dataset {dataset} has no chosen_marks / rejected_marks columns; re-export "
                            "it with `pairs export`")
        marks = (list(part["chosen_marks"]), list(part["rejected_marks"]))
    if cache is None:
        latents: Mapping[str, torch.Tensor] = {}
        conditioning: Mapping[str, Conditioning] = {}
        encode_rows(dataset, part, family, latents, conditioning, winners_only)
    else:
        latents, conditioning = open_cache(cache, family)
        sides = ("chosen",) if winners_only else ("chosen", "rejected")
        missing = {c for side in sides for c in part[side] if c not in latents}
        missing |= {c for c in part["condition_id"] if c not in conditioning}
        if missing:
            raise UserError(f"--cache {cache}: {len(missing)} clips or conditions of --dataset {dataset} ({split}) are "
                            f"not in it; complete it with `train cache --dataset {dataset} --out {cache}`")
    weights = {"none": [1.0] * len(part), "agreement": part["agreement"], "margin": part["margin"]}[weight_by]
    preference = preference_probability(part) if labels == "vote-share" else [1.0] * len(part)
    return PreferenceSet(list(part["chosen"]), list(part["rejected"]), list(part["condition_id"]),
                         torch.tensor(weights, dtype=torch.float32), latents, conditioning, family, winners_only,
                         torch.tensor(preference, dtype=torch.float32), marks, dense_weight)
