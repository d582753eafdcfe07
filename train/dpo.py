"""`train dpo` and `train sft`: fine-tune the embedded model on exported preference pairs, through accelerate.

DPO: the policy starts as the model, the reference is a frozen copy; winner and loser get the same noise
and timestep and go through the network in one batched forward pass (the reference likewise, without
gradients). SFT: the ordinary diffusion loss on winners only, the baseline DPO must beat.
Batches, noise and timesteps of step k depend only on the seed and k, so `--resume` repeats an
uninterrupted run exactly. A non-finite loss stops the run before the update, leaving the last
checkpoint as it was.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import is_tensorboard_available
from peft import LoraConfig
from tqdm import tqdm

from data_schemas import UserError
from train.config import DPOConfig
from train.loss import diffusion_dpo_loss
from train.pair_errors import PairBatch, pair_batch, pair_errors
from model_families.family import ModelFamily
from model_families.registry import load_model
from train.preference_data import PreferenceSet, preference_set
from train.run_state import start_step
from model_families.targets import model_timestep, noisy_and_target, sample_timesteps

Objective = Literal["dpo", "sft"]


@dataclass(frozen=True)
class Reference:
    """DPO's reference: a frozen copy of the policy, or (`frozen` None, with LoRA) the policy with its adapters off."""

    frozen: torch.nn.Module | None = None

    @torch.no_grad()
    def errors(self, family: ModelFamily, policy: torch.nn.Module,
               batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference's (winner, loser) denoising errors on the policy's batch."""
        if self.frozen is not None:
            return pair_errors(family, self.frozen, batch)
        base = getattr(policy, "module", policy)  # accelerate may have wrapped it
        base.disable_adapters()
        try:
            return pair_errors(family, policy, batch)
        finally:
            base.enable_adapters()


def train_preferences(config: DPOConfig, objective: Objective = "dpo") -> Path:
    """Run DPO (objective "dpo") or SFT on winners ("sft"); saves a model folder in `config.out`."""
    out = Path(config.out)
    # TensorBoard event files in OUT/<objective>/ when tensorboard is installed; metrics.jsonl always.
    accelerator = Accelerator(mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.grad_accum,
                              log_with="tensorboard" if is_tensorboard_available() else None, project_dir=str(out))
    family = load_model(config.model)
    data = preference_set(config.dataset, family, config.weight_by, winners_only=objective == "sft")
    if len(data) == 0:
        raise UserError(f"--dataset {config.dataset}: the train split is empty; build more pairs")
    policy = family.denoiser.train()
    policy.requires_grad_(True)
    if config.gradient_checkpointing:
        policy.enable_gradient_checkpointing()
    torch.manual_seed(config.seed)
    if config.lora_rank > 0:  # the reference is the same weights with the adapters off: no second copy
        policy.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.lora_rank, target_modules=list(family.lora_targets),
                                      init_lora_weights="gaussian"))
        reference = Reference()
    else:
        reference = Reference(copy.deepcopy(policy).eval().requires_grad_(False) if objective == "dpo" else None)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=0.0)
    policy, optimizer = accelerator.prepare(policy, optimizer)
    if reference.frozen is not None:
        reference.frozen.to(accelerator.device)
    log_path = out / "metrics.jsonl"
    start = start_step(accelerator, out, config.resume, log_path)
    out.mkdir(parents=True, exist_ok=True)
    accelerator.init_trackers(objective)
    bar = tqdm(range(start, config.steps), desc=objective, unit="step", initial=start, total=config.steps,
               disable=not accelerator.is_main_process)
    for step in bar:
        for micro in range(config.grad_accum):
            with accelerator.accumulate(policy):
                loss, metrics = _loss(objective, policy, reference, family, data, config, step, micro, accelerator)
                if not math.isfinite(loss.item()):
                    raise UserError(f"loss became {loss.item()} at step {step}; the last checkpoint in "
                                    f"{out / 'checkpoints'} is intact: lower --lr or --beta and --resume")
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
        values = {k: accelerator.gather(v.reshape(1)).mean().item() for k, v in metrics.items()}
        bar.set_postfix(loss=f"{values['loss']:.4f}",
                        **({"acc": f"{values['rewards/accuracies']:.2f}"} if objective == "dpo" else {}))
        if accelerator.is_main_process:
            with open(log_path, "a") as log:
                log.write(json.dumps({"step": step + 1, **values}) + "\n")
        accelerator.log(values, step=step + 1)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            accelerator.save_state(str(out / "checkpoints" / f"step-{step + 1}"))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(policy).eval()
        if config.lora_rank > 0:  # a plain model folder: adapters folded into the weights
            model.fuse_lora()
            model.unload_lora()
        family.denoiser = model
        family.save(out, _card(config, objective, len(data), log_path))
    return out


def _loss(objective: Objective, policy: torch.nn.Module, reference: Reference, family: ModelFamily,
          data: PreferenceSet, config: DPOConfig, step: int, micro: int,
          accelerator: Accelerator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    rng = np.random.default_rng([config.seed, step, micro, accelerator.process_index])
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    winners, losers, conditioning, weights = data.batch(rng, config.batch_size, config.window)
    b = len(winners)
    noise = torch.randn(winners.shape, generator=generator)
    timesteps = sample_timesteps(b, generator)
    device = accelerator.device
    if objective == "sft":  # the plain diffusion loss on winners
        noisy, target = noisy_and_target(family.scheduler, winners, noise, timesteps)
        pred = family.predict(policy, noisy.to(device), model_timestep(family.scheduler, timesteps).to(device),
                              {k: v.to(device) for k, v in conditioning.items()})
        loss = torch.nn.functional.mse_loss(pred.float(), target.to(device).float())
        return loss, {"loss": loss.detach()}
    # Winner and loser share noise and timestep, and run as one batch of 2B.
    batch = pair_batch(family.scheduler, winners, losers, conditioning, noise, timesteps, device)
    policy_w, policy_l = pair_errors(family, policy, batch)
    reference_w, reference_l = reference.errors(family, policy, batch)
    return diffusion_dpo_loss(policy_w, policy_l, reference_w, reference_l, config.beta, config.loss,
                              weights.to(device) if config.weight_by != "none" else None)


def _card(config: DPOConfig, objective: str, pairs: int, log_path: Path) -> str:
    rows = [json.loads(line) for line in log_path.read_text().splitlines()]
    last = rows[-20:]
    summary = {k: float(np.mean([r[k] for r in last])) for k in last[0] if k != "step"} if last else {}
    return "\n".join([
        f"# Embedded portrait denoiser, {objective.upper()} fine-tune", "",
        f"- from: {config.model}", f"- dataset: {config.dataset} ({pairs} train pairs)",
        f"- steps: {config.steps}, batch {config.batch_size} × {config.grad_accum}, lr {config.lr}"
        + (f", β {config.beta}, loss {config.loss}, weights {config.weight_by}" if objective == "dpo" else ""),
        f"- seed: {config.seed}", f"- last 20 steps: {json.dumps(summary)}", "",
    ])
