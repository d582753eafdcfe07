"""Every training knob with its one default, help line and choices: one dataclass per command (see cli_kit.options)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cli_kit.options import check_choices, check_positive, option
from data_schemas import UserError
from model_families.targets import PredictionType
from syncnet.lse import VSHIFT
from train.loss import DPOLoss

MixedPrecision = Literal["no", "bf16", "fp16"]
LRSchedule = Literal["constant", "cosine", "linear"]
_MIXED = "no, bf16 or fp16 (default: from `accelerate launch` / its config, else no)."


@dataclass
class PretrainConfig:
    """`train pretrain`: fit the embedded model to the world's ground-truth clips."""

    out: Path = option(help="Folder for the model, checkpoints/ and train_log.jsonl.")
    world: Path | None = option(None, "World folder from `pairs world` (its in-sync clips); default: render in memory.")
    conditions: int = option(48, "Clips to render in memory without --world.", minimum=1)
    world_seed: int = option(1000, "Seed of the rendered world (kept apart from demo worlds).")
    seconds: float = option(4.0, "Length of each rendered clip.", minimum=0.5)
    steps: int = option(3000, "Optimiser steps.", minimum=1)
    batch_size: int = option(8, "Clips per step.", minimum=1)
    window: int = option(16, "Video frames per training clip (a multiple of 4).", minimum=4)
    lr: float = option(3e-4, "AdamW learning rate after warm-up.")
    warmup: int = option(100, "Linear warm-up steps.", minimum=1)
    prediction_type: PredictionType = option("v_prediction", "What the denoiser predicts.")
    motion_dropout: float = option(0.1, "Share of clips trained without motion, for classifier-free guidance.",
                                   minimum=0.0, maximum=1.0)
    seed: int = option(0, "Seed of batches, noise and timesteps: step k is the same whenever it runs.")
    checkpoint_every: int = option(500, "Steps between accelerate checkpoints.", minimum=1)
    mixed_precision: MixedPrecision | None = option(None, _MIXED)
    resume: bool = option(False, "Continue from the newest checkpoint in OUT/checkpoints.")
    size: int = option(64, "Frame size in pixels.", minimum=16)

    def __post_init__(self) -> None:
        check_choices(self)
        check_positive(self, "lr")
        if self.window % 4:
            raise UserError(f"--window {self.window}: must be a multiple of 4 (frames per latent frame)")


@dataclass
class DPOConfig:
    """`train dpo` / `train sft`: fine-tune on preference pairs exported by `pairs export`."""

    dataset: str = option(help="Folder from `pairs export` (or a Hub dataset id).")
    out: Path = option(help="Folder for the model, checkpoints/, latent_cache/, metrics.jsonl, config.json and "
                            "command.txt.")
    model: str = option("embedded", "Model folder (any family), or embedded (the shipped one).")
    beta: float = option(2500.0, "DPO: KL strength β (Hallo4 uses 2500).")
    loss: DPOLoss = option("sigmoid", "DPO: loss on the implicit reward margin.")
    lr: float = option(1e-5, "AdamW learning rate (after warm-up).")
    warmup: int = option(0, "Linear learning-rate warm-up steps.", minimum=0)
    lr_schedule: LRSchedule = option("constant", "Learning rate after warm-up: constant, or decaying to 0 at --steps.")
    max_grad_norm: float = option(1.0, "Clip the gradient norm to this (0: no clipping).", minimum=0.0)
    steps: int = option(200, "Optimiser steps.", minimum=1)
    batch_size: int = option(4, "Pairs per micro-batch.", minimum=1)
    grad_accum: int = option(1, "Micro-batches per optimiser step.", minimum=1)
    window: int = option(16, "Video frames per training clip, cut to the family's clip rule (embedded: a multiple "
                         "of 4; wan-audio: 4k+1).", minimum=1)
    weight_by: Literal["none", "agreement", "margin"] = option("none", "DPO: per-pair loss weights.")
    labels: Literal["hard", "vote-share"] = option(
        "hard", "DPO: hard: every pair a sure win; vote-share: train towards the winner's share of the decisive "
        "votes (ties count half with `pairs build --ties half`), the conservative-DPO loss.")
    dense: bool = option(False, "DPO: weigh each latent frame's denoising error by the pairs' segment marks "
                         "(frames the loser was marked failing count more; see train/frame_weights.py).")
    dense_weight: float = option(2.0, "DPO --dense: λ in w_f ∝ 1 + λ·max(0, loser's − winner's marked share of "
                                 "frame f), mean weight 1.", minimum=0.0)
    seed: int = option(0, "Seed of batches, noise and timesteps: step k is the same whenever it runs.")
    checkpoint_every: int = option(50, "Steps between accelerate checkpoints.", minimum=1)
    keep_checkpoints: int = option(3, "Keep the newest K checkpoints, prune older ones (0: keep all).", minimum=0)
    cache: Path | None = option(None, "Latent cache from `train cache` (read memory-mapped); default: the train "
                                "split is encoded once into OUT/latent_cache before the first step.")
    mixed_precision: MixedPrecision | None = option(None, _MIXED)
    gradient_checkpointing: bool = option(False, "Trade compute for memory.")
    lora_rank: int = option(0, "Train LoRA adapters of this rank; the reference is the network with them off "
                            "(0: full fine-tune against a frozen copy).", minimum=0)
    resume: bool = option(False, "Continue from the newest checkpoint in OUT/checkpoints.")

    def __post_init__(self) -> None:
        check_choices(self)
        check_positive(self, "beta", "lr")  # β ≤ 0 would reverse or drop every preference
        if self.warmup >= self.steps:
            raise UserError(f"--warmup {self.warmup}: must be below --steps {self.steps}")


@dataclass
class CacheConfig:
    """`train cache`: encode a dataset's clips and conditions once into a sharded, resumable latent cache."""

    dataset: str = option(help="Folder from `pairs export` (or a Hub dataset id).")
    out: Path = option(help="Cache folder (cache.json + safetensors shards); an existing one is completed.")
    model: str = option("embedded", "Model folder whose VAE and encoders make the latents, or embedded.")
    splits: tuple[Literal["train", "heldout"], ...] = option(("train", "heldout"),
                                                             "Dataset splits to encode (those present).")
    shard_size: int = option(64, "Clips or conditions per safetensors shard (a kill loses at most one shard).",
                             minimum=1)

    def __post_init__(self) -> None:
        check_choices(self)
        if not self.splits:
            raise UserError("--splits: name at least one split (train, heldout)")


@dataclass
class SyncNetConfig:
    """`train syncnet`: the embedded SyncNet, trained contrastively on the world's in-sync vs shifted windows."""

    out: Path = option(help="Folder for model.safetensors, config.json and train_log.jsonl.")
    conditions: int = option(48, "In-sync world clips rendered in memory.", minimum=1)
    world_seed: int = option(2000, "Seed of the rendered world (kept apart from the pretraining and demo worlds).")
    seconds: float = option(4.0, "Length of each clip.", minimum=1.0)
    size: int = option(64, "Frame size of the rendered clips.", minimum=32)
    crop: int = option(64, "SyncNet face-crop size (a multiple of 16).", minimum=16)
    width: int = option(32, "Channels of the first layer; SyncNet's layout above it.", minimum=8)
    dim: int = option(128, "Embedding size.", minimum=8)
    steps: int = option(1500, "Optimiser steps.", minimum=1)
    batch_size: int = option(64, "Windows per step, each with one in-sync and one shifted audio window.", minimum=1)
    lr: float = option(1e-3, "Adam learning rate.")
    margin: float = option(2.0, "Contrastive-loss margin on the embedding distance.")
    min_shift: int = option(3, "Smallest audio shift (frames) that counts as off-sync.", minimum=1,
                            maximum=VSHIFT)
    seed: int = option(0, "Seed of the batches and the initial weights.")

    def __post_init__(self) -> None:
        check_choices(self)
        check_positive(self, "lr")
        if self.crop % 16:
            raise UserError(f"--crop {self.crop}: must be a multiple of 16")


@dataclass
class InitModelConfig:
    """`train init-model`: a random-initialised model folder of a real family, for tests, demos and benchmarks."""

    out: Path = option(help="Folder to write the model to (family.json, one subfolder per part).")
    family: Literal["wan-audio"] = option("wan-audio", "Model family.")
    size: Literal["tiny", "1.3b"] = option("tiny", "tiny runs on a CPU; 1.3b has Wan2.1-1.3B's (Hallo4's) shapes.")
    seed: int = option(0, "Seed of the initial weights.")

    def __post_init__(self) -> None:
        check_choices(self)


@dataclass
class ConvertHallo4Config:
    """`train convert-hallo4`: Hallo4's released weights → a wan-audio model folder."""

    weights: Path = option(help="Folder of Hallo4's release (hallo4/, Wan2.1_Encoders/, wav2vec/).")
    out: Path = option(help="Folder to write the wan-audio model to.")
    height: int = option(480, "Frame height the model generates (Hallo4: 480).", minimum=16)
    width: int = option(832, "Frame width the model generates (Hallo4: 832).", minimum=16)
