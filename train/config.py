"""Every training knob with its default and meaning, one dataclass per command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class PretrainConfig:
    """`train pretrain`: fit the embedded model to the world's ground-truth clips."""

    out: Path  # folder for the model, checkpoints/ and train_log.jsonl
    world: Path | None = None  # a folder from `pairs world`; None renders `conditions` in memory
    conditions: int = 48  # clips rendered in memory when no --world is given
    world_seed: int = 1000  # world seed for rendered clips (kept apart from demo worlds)
    seconds: float = 4.0  # length of each rendered clip
    steps: int = 3000  # optimiser steps
    batch_size: int = 8  # clips per step
    window: int = 16  # video frames per training clip (a multiple of rho)
    lr: float = 3e-4  # AdamW learning rate after warm-up
    warmup: int = 100  # linear warm-up steps
    prediction_type: str = "v_prediction"  # epsilon, v_prediction or flow
    motion_dropout: float = 0.1  # share of clips trained without motion, for classifier-free guidance
    seed: int = 0  # seed of batches, noise and timesteps: step k of a run is the same whenever it runs
    checkpoint_every: int = 500  # steps between accelerate checkpoints
    mixed_precision: str | None = None  # no, bf16 or fp16; None: from `accelerate launch` / its config, else no
    resume: bool = False  # continue from the newest checkpoint in out/checkpoints
    size: int = 64  # frame size in pixels


@dataclass
class DPOConfig:
    """`train dpo` / `train sft`: fine-tune on preference pairs exported by `pairs export`."""

    dataset: str  # folder from `pairs export` (datasets.load_from_disk) or a Hub id
    out: Path  # folder for the model, checkpoints/ and metrics.jsonl
    model: str = "embedded"  # model folder from `train pretrain`, or embedded (the shipped one)
    beta: float = 2500.0  # KL strength (Hallo4 uses 2500)
    loss: str = "sigmoid"  # sigmoid, hinge or ipo
    lr: float = 1e-5  # AdamW learning rate
    steps: int = 200  # optimiser steps
    batch_size: int = 4  # pairs per step
    grad_accum: int = 1  # micro-batches per optimiser step
    window: int = 16  # video frames per training clip (a multiple of rho)
    weight_by: str = "none"  # none, agreement or margin: per-pair loss weights
    seed: int = 0  # seed of batches, noise and timesteps: step k is the same whenever it runs
    checkpoint_every: int = 50  # steps between accelerate checkpoints
    mixed_precision: str | None = None  # no, bf16 or fp16; None: from `accelerate launch` / its config, else no
    gradient_checkpointing: bool = False  # trade compute for memory
    lora_rank: int = 0  # >0: train LoRA adapters; the reference is the same network with them disabled
    resume: bool = False  # continue from the newest checkpoint in out/checkpoints


@dataclass
class SyncNetConfig:
    """`train syncnet`: the embedded SyncNet, trained contrastively on the world's in-sync vs shifted windows."""

    out: Path  # folder for model.safetensors, config.json and train_log.jsonl
    conditions: int = 48  # in-sync world clips rendered in memory
    world_seed: int = 2000  # kept apart from the pretraining and demo worlds
    seconds: float = 4.0  # length of each clip
    size: int = 64  # frame size of the rendered clips
    crop: int = 64  # SyncNet face-crop size (a multiple of 16)
    width: int = 32  # channels of the first layer; SyncNet's layout above it
    dim: int = 128  # embedding size
    steps: int = 1500  # optimiser steps
    batch_size: int = 64  # windows per step, each with one in-sync and one shifted audio window
    lr: float = 1e-3  # Adam learning rate
    margin: float = 2.0  # contrastive-loss margin on the embedding distance
    min_shift: int = 3  # smallest audio shift (frames) that counts as off-sync
    seed: int = 0
