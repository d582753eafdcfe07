"""`train pretrain`: fit the embedded denoiser to ground-truth world clips, through accelerate."""

from __future__ import annotations

import json
import math
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from tqdm import tqdm

from data_schemas import UserError
from train.config import PretrainConfig
from model_families.embedded.latents import frames_to_tensor, patchify
from model_families.embedded.denoiser import PortraitDenoiser
from model_families.embedded.motion_features import feature_dim
from model_families.embedded.family import EmbeddedFamily
from train.run_state import start_step
from model_families.targets import model_timestep, noisy_and_target, sample_timesteps, training_scheduler
from train.world_data import ClipSet, generated_clips, world_clips


def pretrain(config: PretrainConfig) -> Path:
    """Train, checkpoint, and save the final model folder in `config.out`; returns it."""
    out = Path(config.out)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    clips = world_clips(config.world, config.size) if config.world else generated_clips(
        config.conditions, config.world_seed, config.size, config.seconds)
    if clips.frames.shape[1] < config.window:
        raise UserError(f"clips have {clips.frames.shape[1]} frames, fewer than --window {config.window}")
    torch.manual_seed(config.seed)
    model = PortraitDenoiser(motion_dim=feature_dim(), sample_size=config.size)
    scheduler = training_scheduler(config.prediction_type)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / config.warmup))
    model, optimizer, lr_schedule = accelerator.prepare(model, optimizer, lr_schedule)
    log_path = out / "train_log.jsonl"
    start = start_step(accelerator, out, config.resume, log_path)
    out.mkdir(parents=True, exist_ok=True)
    began = time.time()
    losses = []
    bar = tqdm(range(start, config.steps), desc="pretrain", unit="step", disable=not accelerator.is_main_process,
               initial=start, total=config.steps)
    for step in bar:
        loss = _step(model, scheduler, clips, config, step, accelerator)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        lr_schedule.step()
        optimizer.zero_grad()
        value = accelerator.gather(loss.detach()).mean().item()
        if not math.isfinite(value):
            raise UserError(f"loss became {value} at step {step}; lower --lr and resume from the last checkpoint")
        losses.append(value)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if accelerator.is_main_process:
            with open(log_path, "a") as log:
                log.write(json.dumps({"step": step + 1, "loss": value}) + "\n")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            accelerator.save_state(str(out / "checkpoints" / f"step-{step + 1}"))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        pipeline = EmbeddedFamily(accelerator.unwrap_model(model), scheduler)
        pipeline.save(out, _card(config, clips, log_path, time.time() - began, start))
    return out


def _step(model, scheduler, clips: ClipSet, config: PretrainConfig, step: int, accelerator: Accelerator):
    rng = np.random.default_rng([config.seed, step, accelerator.process_index])
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    frames, refs, motion = clips.batch(rng, config.batch_size, config.window)
    rho, patch = model_config(model).rho, model_config(model).patch
    x0 = patchify(frames_to_tensor(frames), rho, patch)
    ref = patchify(frames_to_tensor(refs[:, None]), 1, patch)[:, 0]
    motion = torch.from_numpy(motion)
    keep = torch.from_numpy(rng.random(config.batch_size) >= config.motion_dropout).float()
    motion = motion * keep[:, None, None]
    noise = torch.randn(x0.shape, generator=generator)
    timesteps = sample_timesteps(config.batch_size, generator)
    noisy, target = noisy_and_target(scheduler, x0, noise, timesteps)
    device = accelerator.device
    pred = model(noisy.to(device), model_timestep(scheduler, timesteps).to(device), ref.to(device), motion.to(device))
    return torch.nn.functional.mse_loss(pred.float(), target.to(device).float())


def model_config(model):
    """The config of a model that accelerate may have wrapped."""
    return getattr(model, "module", model).config


def _card(config: PretrainConfig, clips: ClipSet, log_path: Path, seconds: float, start: int) -> str:
    losses = [json.loads(line)["loss"] for line in log_path.read_text().splitlines()]
    data = (f"world folder {config.world}" if config.world else
            f"{config.conditions} world conditions rendered with seed {config.world_seed}, {config.seconds} s each")
    settings = {k: str(v) for k, v in asdict(config).items()}
    return "\n".join([
        "# Embedded portrait denoiser",
        "",
        "Made by `train pretrain` of portrait-dpo.",
        "",
        f"- command: `{shlex.join(sys.argv)}`",
        f"- seed: {config.seed}",
        f"- steps: {config.steps} (this invocation ran {config.steps - start}, in {seconds / 60:.1f} min on "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}, torch {torch.__version__})",
        f"- data: {data}; {clips.frames.shape[0]} clips × {clips.frames.shape[1]} frames at "
        f"{clips.frames.shape[2]} px",
        f"- target: {config.prediction_type}",
        f"- final loss (mean of the last 100 steps): {np.mean(losses[-100:]):.4f}",
        "",
        "## Settings",
        "",
        "```json",
        json.dumps(settings, indent=2),
        "```",
        "",
    ])
