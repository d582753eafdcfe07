"""Filling a latent cache (format: train/latent_cache.py): `train cache`, and `train dpo|sft` before their first
step when no `--cache` is given; split over the processes of `accelerate launch`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cli_kit.processes import process_state
from data_schemas import UserError
from model_families.family import ModelFamily
from model_families.registry import load_model
from train.config import CacheConfig
from train.latent_cache import open_writers, write_fixed_latents
from train.preference_data import encode_rows, load_split


def build_cache(config: CacheConfig) -> int:
    """`train cache`: encode what the cache lacks of the dataset's splits; under `accelerate launch` each process
    takes every n-th condition with its pairs. Returns how many clips and conditions this process wrote."""
    family = load_model(config.model, str(process_state().device))
    return fill_cache(config.dataset, family, config.out, config.splits, config.shard_size)


def fill_cache(dataset: str, family: ModelFamily, out: Path, splits: Sequence[str] = ("train", "heldout"),
               shard_size: int = 64, winners_only: bool = False) -> int:
    """Encode with `family` what the cache `out` lacks of the dataset's `splits` (all processes of `accelerate
    launch` call it; each takes every n-th condition). Returns how many clips and conditions this process wrote."""
    state = process_state()
    if state.is_main_process:
        open_writers(out, family, shard_size, True)  # cache.json written, or another model refused
    state.wait_for_everyone()
    clips, conditions = open_writers(out, family, shard_size, False)
    for split in splits:
        try:
            part = load_split(dataset, split)
        except UserError:
            if split == "train":
                raise
            continue  # an optional split the dataset does not have
        if state.num_processes > 1:  # by condition: a clip and its condition belong to one process, encoded once
            ids = sorted(set(part["condition_id"]))
            mine = set(ids[state.process_index::state.num_processes])
            part = part.select([i for i, condition in enumerate(part["condition_id"]) if condition in mine])
        encode_rows(dataset, part, family, clips, conditions, winners_only)
    clips.flush()
    conditions.flush()
    if len(clips.existing):  # for windows up to a clip's length (the rare longer one makes its own)
        write_fixed_latents(out, family, len(clips.existing[next(iter(clips.existing))]))
    state.wait_for_everyone()
    return clips.written + conditions.written
