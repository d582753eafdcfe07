"""`train dpo` under the shipped FSDP and DeepSpeed configs on 2 CPU processes (gloo): really sharded, with the
loss curve of the 1-process run."""

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.distributed.checkpoint import FileSystemReader

from tests.pairs.test_export import mark_losers, voted_campaign  # noqa: F401 - fixtures
from tests.train.test_dpo import exported  # noqa: F401 - fixture
from train.cache_job import build_cache
from train.config import CacheConfig, DPOConfig
from train.dpo import train_preferences
from model_families.registry import load_model

CONFIGS = Path(__file__).parents[2] / "train" / "accelerate"
OPTIONS = dict(batch_size=1, window=9, checkpoint_every=2, lr=1e-3, beta=50.0)


@pytest.fixture
def tiny_run(exported, tmp_path):  # noqa: F811 - the imported fixture
    """(model, cache, flags): the tiny wan-audio model and its latent cache, encoded once for all the runs."""
    from model_families.wan_audio import init_model

    model = init_model("tiny", tmp_path / "wan")
    cache = tmp_path / "cache"
    build_cache(CacheConfig(dataset=str(exported), out=cache, model=str(model), splits=("train",)))
    flags = [part for key, value in OPTIONS.items() for part in (f"--{key.replace('_', '-')}", str(value))]
    return model, cache, flags + ["--dataset", str(exported), "--model", str(model), "--cache", str(cache)]


def _launch(config: str, out: Path, flags: list[str], env: dict[str, str]) -> None:
    """`train dpo` under the shipped accelerate config `config`, at 2 processes in fp32."""
    with socket.socket() as probe:  # a free port: other test runs on this machine may launch too
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file", str(CONFIGS / f"{config}.yaml"),
         "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(port), "-m", "train.cli",
         "dpo", "--out", str(out), *flags],
        capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-3000:]


def _assert_repeats_one_process(out: Path, exported: Path, model: Path, cache: Path, lora_rank: int) -> None:
    """The launched run's loss curve is the 1-process run's with --grad-accum 2 within 1e-4 relative (the
    collectives sum the same gradients in another order; measured: 1e-5), it moved, and it saved a plain model."""
    single = train_preferences(DPOConfig(dataset=str(exported), out=out.parent / "single", model=str(model),
                                         cache=cache, steps=3, grad_accum=2, lora_rank=lora_rank, **OPTIONS))

    def losses(run: Path) -> list[float]:
        return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert losses(out) == pytest.approx(losses(single), rel=1e-4)
    assert losses(out)[-1] != pytest.approx(losses(out)[0], rel=1e-4)  # it trained: the curve moved
    trained = load_model(out)  # the gathered whole weights, each in the fresh model's dtype
    assert trained.name == "wan-audio" and {p.dtype for p in trained.denoiser.parameters()} == {torch.float32}
    assert not any("lora" in name for name in trained.denoiser.state_dict())


@pytest.mark.parametrize("lora_rank", [0, 4], ids=["full", "lora"])
def test_fsdp_on_two_cpu_processes_shards_and_repeats_the_one_process_run(exported, tiny_run, tmp_path, lora_rank):
    """FSDP2 (full shard) of the tiny wan-audio model: each process holds half of the policy (and of the frozen
    reference of a full fine-tune), the checkpoint is one shard per process, and the loss curve is the 1-process
    run's. The full fine-tune stops after step 2 and goes on with --resume from its sharded checkpoint. Weights
    are not compared: Adam turns the float noise of near-zero gradients (the text cross-attention under null
    text) into ±lr steps, under DDP as under FSDP."""
    model, cache, flags = tiny_run
    out = tmp_path / "fsdp"
    runs = [["--steps", "2"], ["--steps", "3", "--resume"]] if lora_rank == 0 else [["--steps", "3"]]
    for run in runs:  # ACCELERATE_USE_CPU: CPU processes joined over gloo
        _launch("fsdp", out, flags + ["--lora-rank", str(lora_rank)] + run, {"ACCELERATE_USE_CPU": "true"})

    card = (out / "model_card.md").read_text()
    assert "parallelism: FSDP, 2 processes; process 0 held 50% of the policy's parameters" in card
    assert ("and 50% of the frozen reference's" in card) == (lora_rank == 0)  # LoRA: no second copy at all
    # SHARDED_STATE_DICT: every parameter is saved as 2 chunks, one per process.
    stored = FileSystemReader(str(out / "checkpoints" / "step-2" / "pytorch_model_fsdp_0")).read_metadata()
    chunks = {name: len(meta.chunks) for name, meta in stored.state_dict_metadata.items() if hasattr(meta, "chunks")}
    assert chunks and set(chunks.values()) == {2}
    _assert_repeats_one_process(out, exported, model, cache, lora_rank)


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                    reason="deepspeed is not installed (`pip install deepspeed`; not a dependency of portrait-dpo)")
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_on_two_cpu_processes_repeats_the_one_process_run(exported, tiny_run, tmp_path, stage):
    """DeepSpeed ZeRO-2/3 of the tiny wan-audio model (full fine-tuning) on DeepSpeed's CPU accelerator over gloo:
    ZeRO-3 holds half of the policy on each process, the frozen reference stays whole (DeepSpeed prepares only
    the trained model), and the loss curve is the 1-process run's."""
    model, cache, flags = tiny_run
    out = tmp_path / "deepspeed"
    _launch(f"deepspeed_zero{stage}", out, flags + ["--steps", "3"], {})

    card = (out / "model_card.md").read_text()
    held = "50%" if stage == 3 else "100%"
    assert f"parallelism: DEEPSPEED, 2 processes; process 0 held {held} of the policy's parameters and 100% of the " \
           "frozen reference's" in card
    _assert_repeats_one_process(out, exported, model, cache, 0)
