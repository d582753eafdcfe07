"""The DPO-step benchmark's ours trains from a cache filled in another process by the real cache writers; what it
reads back is exactly what the baseline encodes every step."""

import torch

from bench.dpo_step import cached_batch, encode_batch, family_inputs, fill, prepare
from model_families.registry import load_model
from train.latent_cache import open_cache


def test_ours_reads_from_the_filled_cache_what_the_baseline_encodes(tmp_path):
    prepare(tmp_path, "tiny", frames=5, batch=2)
    filled = fill(tmp_path, batch=2, frames=5, device="cpu")
    assert filled["pairs"] == 2 and filled["seconds"] > 0 and filled["work_mib"] >= 0
    family = load_model(tmp_path / "model")
    clips, conditions = open_cache(tmp_path / "cache", family)  # refuses a cache of other weights
    assert len(clips) == 4 and len(conditions) == 2
    read = cached_batch(clips, conditions, 2)
    (tmp_path / "again").mkdir()  # the same seeded clips, rendered afresh
    encoded = encode_batch(family, family_inputs(tmp_path / "again", 2, 5), 5)
    assert torch.equal(read[0], encoded[0]) and torch.equal(read[1], encoded[1])
    assert not torch.equal(read[0], read[1])  # winners and losers are different clips
    assert read[2].keys() == encoded[2].keys()
    assert all(torch.equal(read[2][k], encoded[2][k]) for k in read[2])
