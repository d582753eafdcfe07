"""`train cache`: encode what a latent cache lacks of a dataset's splits, split over the processes of
`accelerate launch` (the cache's format is train/latent_cache.py)."""

from __future__ import annotations

from cli_kit.processes import process_state
from data_schemas import UserError
from model_families.registry import load_model
from train.config import CacheConfig
from train.latent_cache import open_writers
from train.preference_data import encode_rows, load_split


def build_cache(config: CacheConfig) -> int:
    """`train cache`: encode what the cache lacks of the dataset's splits; under `accelerate launch` each process
    takes every n-th condition with its pairs. Returns how many clips and conditions this process wrote."""
    state = process_state()
    family = load_model(config.model, str(state.device))
    if state.is_main_process:
        open_writers(config.out, family, config.shard_size, True)  # cache.json written, or another model refused
    state.wait_for_everyone()
    clips, conditions = open_writers(config.out, family, config.shard_size, False)
    for split in config.splits:
        try:
            part = load_split(config.dataset, split)
        except UserError:
            if split == "train":
                raise
            continue  # an optional split the dataset does not have
        if state.num_processes > 1:  # by condition: a clip and its condition belong to one process, encoded once
            ids = sorted(set(part["condition_id"]))
            mine = set(ids[state.process_index::state.num_processes])
            part = part.select([i for i, condition in enumerate(part["condition_id"]) if condition in mine])
        encode_rows(config.dataset, part, family, clips, conditions)
    clips.flush()
    conditions.flush()
    state.wait_for_everyone()
    return clips.written + conditions.written
