"""`train dpo` and `train sft`: fine-tune the embedded model on exported preference pairs, through accelerate.

DPO: the policy starts as the model, the reference is a frozen copy; winner and loser get the same noise
and timestep and go through the network in one batched forward pass (the reference likewise, without
gradients). `--dense` weighs each latent frame's error by the pair's segment marks, for policy and reference,
winner and loser alike (train/frame_weights.py has the formula). SFT: the ordinary diffusion loss on winners only,
the baseline DPO must beat.
Under `accelerate launch` (DDP, FSDP, DeepSpeed: train/accelerate/) train/sharding.py places the models: under
FSDP the frozen reference of a full fine-tune is sharded like the policy, on CPU processes too, and the saved
model folder holds the gathered whole weights.
Batches, noise, timesteps and the learning rate of step k depend only on the seed and k, and the checkpoint
holds the weights and the optimiser, so `--resume` repeats an uninterrupted run exactly. Gradients are
clipped to `--max-grad-norm` by accelerate; only the newest `--keep-checkpoints` checkpoints are kept. A non-finite loss stops the run before the update, leaving the last
checkpoint as it was.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import is_tensorboard_available
from diffusers.optimization import get_scheduler
from peft import LoraConfig
from tqdm import tqdm

from data_schemas import UserError
from train.config import DPOConfig
from train.loss import diffusion_dpo_loss
from train.pair_errors import PairBatch, pair_batch, pair_errors
from model_families.family import ModelFamily
from model_families.registry import load_model
from train.cache_job import fill_cache
from train.preference_data import PreferenceSet, preference_set
from train.run_state import prune_checkpoints, start_step
from train.sharding import make_accelerator, parallelism, prepare_reference, whole_model
from model_families.targets import flow_sigma, model_timestep, noisy_and_target, prediction_type_of, sample_timesteps

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
    # Before the accelerator: under DeepSpeed ZeRO-3 transformers would partition the encoders as they load.
    family = load_model(config.model)
    # TensorBoard event files in OUT/<objective>/ when tensorboard is installed; metrics.jsonl always.
    accelerator = make_accelerator(config.batch_size, mixed_precision=config.mixed_precision,
                                   gradient_accumulation_steps=config.grad_accum,
                                   log_with="tensorboard" if is_tensorboard_available() else None, project_dir=str(out))
    if config.loss == "flow-dpo" and prediction_type_of(family.scheduler) != "flow":
        raise UserError(f"--loss flow-dpo: --model {config.model} predicts {prediction_type_of(family.scheduler)}, "
                        "not flow-matching velocity; use --loss sigmoid")
    cache = config.cache
    if cache is None:  # encoded once into OUT: no step, no --resume and no other process encodes them again
        cache = out / "latent_cache"
        fill_cache(config.dataset, family, cache, ("train",), winners_only=objective == "sft")
    data = preference_set(config.dataset, family, config.weight_by, winners_only=objective == "sft",
                          cache=cache, labels=config.labels,
                          dense_weight=config.dense_weight if config.dense and objective == "dpo" else None)
    if len(data) == 0:
        raise UserError(f"--dataset {config.dataset}: the train split is empty; build more pairs")
    policy = family.denoiser.train()
    policy.requires_grad_(True)
    if config.gradient_checkpointing:
        policy.enable_gradient_checkpointing()
    torch.manual_seed(config.seed)
    if config.lora_rank > 0:  # the reference is the same weights with the adapters off: no second copy
        _add_adapters(policy, config.lora_rank, family)
        reference = Reference()
    else:
        reference = Reference(copy.deepcopy(policy).eval().requires_grad_(False) if objective == "dpo" else None)
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=0.0)
    adamw = optimizer
    blank = functools.partial(_blank_policy, type(policy), policy.config, config.lora_rank, family)  # before sharding
    policy, optimizer = accelerator.prepare(policy, optimizer)
    if reference.frozen is not None:  # under FSDP sharded like the policy
        reference = Reference(prepare_reference(accelerator, reference.frozen))
    spread = parallelism(accelerator, policy, reference.frozen)
    log_path = out / "metrics.jsonl"
    start = start_step(accelerator, out, config.resume, log_path)
    # The learning rate is a function of the step: built here at the start step (not restored from the
    # checkpoint, which a run with another --steps wrote), stepped once per optimiser step by us rather than
    # through accelerator.prepare (which steps it once per process), so it is the same on any number of processes.
    # Its base rate is --lr, set here: a resumed optimiser's groups may lack it (FSDP's sharded optimiser state).
    for group in adamw.param_groups:
        group["initial_lr"] = config.lr
    schedule = get_scheduler("constant_with_warmup" if config.lr_schedule == "constant" else config.lr_schedule,
                             adamw, num_warmup_steps=config.warmup, num_training_steps=config.steps,
                             last_epoch=start - 1)
    out.mkdir(parents=True, exist_ok=True)
    accelerator.init_trackers(objective)
    bar = tqdm(range(start, config.steps), desc=objective, unit="step", initial=start, total=config.steps,
               disable=not accelerator.is_main_process)
    for step in bar:
        micro_metrics = []
        for micro in range(config.grad_accum):
            with accelerator.accumulate(policy):
                loss, metrics = _loss(objective, policy, reference, family, data, config, step, micro, accelerator)
                if not math.isfinite(loss.item()):
                    raise UserError(f"loss became {loss.item()} at step {step}; the last checkpoint in "
                                    f"{out / 'checkpoints'} is intact: lower --lr or --beta and --resume")
                accelerator.backward(loss)
                micro_metrics.append(metrics)
                if accelerator.sync_gradients:
                    grad_norm = _grad_norm(accelerator, policy, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
        # The step's values: means over its micro-batches and processes, i.e. over the whole optimiser batch.
        metrics = {k: torch.stack([m[k] for m in micro_metrics]).mean() for k in micro_metrics[0]}
        metrics["grad_norm"], metrics["lr"] = grad_norm, torch.tensor(schedule.get_last_lr()[0])
        schedule.step()
        # One gather for all of them (float64 holds every metric's value exactly), not one per metric each step.
        row = torch.stack([torch.as_tensor(v).detach().reshape(()).double() for v in metrics.values()])
        values = dict(zip(metrics, accelerator.gather(row[None].to(accelerator.device)).mean(0).tolist()))
        bar.set_postfix(loss=f"{values['loss']:.4f}",
                        **({"acc": f"{values['rewards/accuracies']:.2f}"} if objective == "dpo" else {}))
        if accelerator.is_main_process:
            with open(log_path, "a") as log:
                log.write(json.dumps({"step": step + 1, **values}) + "\n")
        accelerator.log(values, step=step + 1)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            accelerator.save_state(str(out / "checkpoints" / f"step-{step + 1}"))
            if accelerator.is_main_process:
                prune_checkpoints(out, config.keep_checkpoints)
    accelerator.wait_for_everyone()
    model = whole_model(accelerator, policy, blank)  # before end_training ends the process group
    accelerator.end_training()
    if accelerator.is_main_process:
        model = model.eval()
        if config.lora_rank > 0:  # a plain model folder: adapters folded into the weights
            model.fuse_lora()
            model.unload_lora()
        family.denoiser = model
        family.save(out, _card(config, objective, len(data), log_path, accelerator.num_processes, spread))
    return out


def _loss(objective: Objective, policy: torch.nn.Module, reference: Reference, family: ModelFamily,
          data: PreferenceSet, config: DPOConfig, step: int, micro: int,
          accelerator: Accelerator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    # Micro-batch g of a step is drawn from (seed, step, g) alone, g counting over processes: n processes with
    # --grad-accum a draw the micro-batches of one process with --grad-accum n·a, so their runs match.
    rng = np.random.default_rng([config.seed, step, micro * accelerator.num_processes + accelerator.process_index])
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    winners, losers, conditioning, weights, preference, frame_weights = data.batch(rng, config.batch_size,
                                                                                  config.window)
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
    batch = pair_batch(family.scheduler, winners, losers, conditioning, noise, timesteps, device, frame_weights)
    policy_w, policy_l = pair_errors(family, policy, batch)
    reference_w, reference_l = reference.errors(family, policy, batch)
    return diffusion_dpo_loss(policy_w, policy_l, reference_w, reference_l, config.beta, config.loss,
                              weights.to(device) if config.weight_by != "none" else None,
                              sigma=flow_sigma(timesteps).to(device), preference=preference.to(device))


def _add_adapters(model: torch.nn.Module, rank: int, family: ModelFamily) -> None:
    model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(family.lora_targets),
                                 init_lora_weights="gaussian"))


def _blank_policy(kind: type, model_config: dict, lora_rank: int, family: ModelFamily) -> torch.nn.Module:
    """A new policy of the run's structure (the denoiser's class and config, the run's adapters), to load into."""
    blank = kind.from_config(model_config)
    if lora_rank > 0:
        _add_adapters(blank, lora_rank, family)
    return blank


def _grad_norm(accelerator: Accelerator, policy: torch.nn.Module, max_norm: float) -> torch.Tensor:
    """The total gradient norm before clipping, clipped to `max_norm` through accelerate (0: not clipped)."""
    parameters = list(policy.parameters())  # all of them: accelerate matches the list to clip an FSDP model
    norm = accelerator.clip_grad_norm_(parameters, max_norm if max_norm > 0 else float("inf"))
    # DeepSpeed clips itself and reports its last norm as a float (None before its first step).
    return torch.as_tensor(float("nan") if norm is None else norm, dtype=torch.float32).detach()


def _card(config: DPOConfig, objective: str, pairs: int, log_path: Path, processes: int, spread: str) -> str:
    rows = [json.loads(line) for line in log_path.read_text().splitlines()]
    last = rows[-20:]
    summary = {k: float(np.mean([r[k] for r in last])) for k in last[0] if k != "step"} if last else {}
    return "\n".join([
        f"# Embedded portrait denoiser, {objective.upper()} fine-tune", "",
        f"- from: {config.model}", f"- dataset: {config.dataset} ({pairs} train pairs)",
        f"- steps: {config.steps}, batch {config.batch_size} × {config.grad_accum} × {processes} processes, "
        f"lr {config.lr} ({config.lr_schedule}, warm-up {config.warmup}), gradient norm ≤ {config.max_grad_norm}"
        + (f", β {config.beta}, loss {config.loss}, labels {config.labels}, weights {config.weight_by}"
           + (f", dense λ {config.dense_weight}" if config.dense else "")
           if objective == "dpo" else ""),
        f"- parallelism: {spread}", f"- seed: {config.seed}", f"- last 20 steps: {json.dumps(summary)}", "",
    ])
