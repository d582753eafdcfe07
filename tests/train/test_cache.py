"""`train cache`: the latent cache on disk, resumable, refused for another model, read by the trainer."""

import json

import pytest
import torch

from data_schemas import UserError
from model_families.embedded.family import EmbeddedFamily
from tests.train.test_dpo import config, exported  # noqa: F401 - fixture
from tests.pairs.test_export import voted_campaign  # noqa: F401 - fixture
from train.config import CacheConfig
from train.dpo import train_preferences
from train.cache_job import build_cache
from train.latent_cache import open_cache


def test_the_trainer_reads_the_cache_and_repeats_the_in_memory_run(exported, tiny_model_dir, tmp_path):  # noqa: F811
    cache = tmp_path / "cache"
    written = build_cache(CacheConfig(dataset=str(exported), out=cache, model=str(tiny_model_dir), shard_size=2))
    clips, conditions = open_cache(cache, EmbeddedFamily.load(tiny_model_dir))
    assert written == len(clips) + len(conditions) and len(list(cache.glob("clips-*.safetensors"))) > 1
    assert build_cache(CacheConfig(dataset=str(exported), out=cache, model=str(tiny_model_dir))) == 0  # complete

    in_memory = train_preferences(config(exported, tiny_model_dir, tmp_path / "memory", steps=2))
    cached = train_preferences(config(exported, tiny_model_dir, tmp_path / "cached", steps=2, cache=cache))

    def losses(run):
        return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert losses(cached) == pytest.approx(losses(in_memory), rel=1e-6)


def test_a_killed_cache_resumes_and_another_model_is_refused(exported, tiny_model_dir, tmp_path):  # noqa: F811
    cache = tmp_path / "cache"
    build_cache(CacheConfig(dataset=str(exported), out=cache, model=str(tiny_model_dir), shard_size=1))
    family = EmbeddedFamily.load(tiny_model_dir)
    before = dict(open_cache(cache, family)[0])
    lost = sorted(cache.glob("clips-*.safetensors"))[:2]  # as if killed before these shards were renamed
    for shard in lost:
        shard.unlink()
    with pytest.raises(UserError, match="2 clips or conditions .* are not in it; complete it with `train cache"):
        train_preferences(config(exported, tiny_model_dir, tmp_path / "run", steps=1, cache=cache))
    assert build_cache(CacheConfig(dataset=str(exported), out=cache, model=str(tiny_model_dir))) == 2
    after = open_cache(cache, family)[0]
    assert set(after) == set(before) and all(torch.equal(after[k], v) for k, v in before.items())

    other = tmp_path / "other"
    next(family.denoiser.parameters()).data += 1  # other weights: another version
    family.save(other, "# other\n")
    with pytest.raises(UserError, match=r"--cache .*made by embedded \w+, but the model is embedded \w+"):
        train_preferences(config(exported, other, tmp_path / "run", steps=1, cache=cache))
    with pytest.raises(UserError, match="--out .*made by embedded"):
        build_cache(CacheConfig(dataset=str(exported), out=cache, model=str(other)))
