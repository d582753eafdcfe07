"""`train cache`: the latent cache on disk, resumable, refused for another model, read by the trainer."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data_schemas import UserError
from model_families.embedded.family import EmbeddedFamily
from tests.train.test_dpo import config, exported  # noqa: F401 - fixture
from tests.pairs.test_export import voted_campaign  # noqa: F401 - fixture
from train.config import CacheConfig
from train.dpo import train_preferences
from train.cache_job import build_cache
import train.latent_cache
from train.latent_cache import open_cache, open_writers


def test_the_trainer_reads_a_given_cache_or_makes_its_own_with_the_same_losses(exported, tiny_model_dir,  # noqa: F811
                                                                              tmp_path):
    cache = tmp_path / "cache"
    written = build_cache(CacheConfig(dataset=str(exported), out=cache, model=str(tiny_model_dir), shard_size=2))
    clips, conditions = open_cache(cache, EmbeddedFamily.load(tiny_model_dir))
    assert written == len(clips) + len(conditions) and len(list(cache.glob("clips-*.safetensors"))) > 1
    assert build_cache(CacheConfig(dataset=str(exported), out=cache, model=str(tiny_model_dir))) == 0  # complete

    own = train_preferences(config(exported, tiny_model_dir, tmp_path / "own", steps=2))
    cached = train_preferences(config(exported, tiny_model_dir, tmp_path / "cached", steps=2, cache=cache))

    def losses(run):
        return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert losses(cached) == pytest.approx(losses(own), rel=1e-6)
    made = open_cache(own / "latent_cache", EmbeddedFamily.load(tiny_model_dir))[0]  # the train split, once
    assert set(made) <= set(clips) and all(torch.equal(made[key], clips[key]) for key in made)
    assert not (tmp_path / "cached" / "latent_cache").exists()  # a given cache is used as it is


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


def test_two_processes_split_the_cache_and_make_the_one_process_cache(exported, tiny_model_dir, tmp_path):  # noqa: F811
    with socket.socket() as probe:  # a free port: other test runs on this machine may launch too
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launched = tmp_path / "launched"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--main_process_port", str(port), "--mixed_precision", "no", "--dynamo_backend",
         "no", "-m", "train.cli", "cache", "--dataset", str(exported), "--out", str(launched), "--model",
         str(tiny_model_dir), "--shard-size", "1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "ACCELERATE_USE_CPU": "true"})
    assert result.returncode == 0, result.stderr[-2000:]
    single = tmp_path / "single"
    total = build_cache(CacheConfig(dataset=str(exported), out=single, model=str(tiny_model_dir)))
    shares = [int(n) for n in re.findall(r"^(\d+) clips and conditions encoded", result.stdout, re.MULTILINE)]
    assert len(shares) == 2 and all(shares) and sum(shares) == total  # each process did its part, none twice
    family = EmbeddedFamily.load(tiny_model_dir)
    for made, expected in zip(open_cache(launched, family), open_cache(single, family)):
        assert set(made) == set(expected)
    clips, expected = open_cache(launched, family)[0], open_cache(single, family)[0]
    assert all(torch.equal(clips[key], expected[key]) for key in expected)


def test_a_fill_reads_each_shard_once_and_sees_what_it_wrote(tiny_model_dir, tmp_path, monkeypatch):
    family = EmbeddedFamily.load(tiny_model_dir)
    opened = []
    real = train.latent_cache.safe_open
    monkeypatch.setattr(train.latent_cache, "safe_open", lambda path, **kw: opened.append(path) or real(path, **kw))
    clips, conditions = open_writers(tmp_path, family, 2, True)
    latents = {f"{i:064x}": torch.full((2, 3), float(i)) for i in range(9)}
    for key, value in latents.items():
        clips[key] = value
        assert key in clips and torch.equal(clips[key], value)  # pending or flushed, a written key is seen
    conditions["c0"] = {"audio": torch.ones(4), "image": torch.zeros(2)}
    clips.flush()
    conditions.flush()
    shards = sorted(str(p) for p in tmp_path.glob("*-*.safetensors"))
    assert len(shards) == 6 and sorted(opened) == shards  # each new shard opened once, none re-read per flush
    assert all(torch.equal(clips[key], value) for key, value in latents.items())

    again, conditioned = open_writers(tmp_path, family, 2, True)  # as a resumed (or other) process opens it
    assert set(again.existing) == set(latents) and all(key in again for key in latents)
    assert set(conditioned.existing) == {"c0"} and torch.equal(conditioned["c0"]["audio"], torch.ones(4))
    stored, stored_conditions = open_cache(tmp_path, family)
    assert all(torch.equal(stored[key], value) for key, value in latents.items()) and set(stored_conditions) == {"c0"}
