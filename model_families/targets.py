"""The three diffusion targets real portrait models train on: ε, v-prediction and flow-matching velocity.

The target type travels with the model in its scheduler config: DDPMScheduler's `prediction_type`
(epsilon or v_prediction), or FlowMatchEulerDiscreteScheduler for flow matching.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from diffusers import DDIMScheduler, DDPMScheduler, FlowMatchEulerDiscreteScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from data_schemas import UserError

PredictionType = Literal["epsilon", "v_prediction", "flow"]
PREDICTION_TYPES: tuple[str, ...] = get_args(PredictionType)
TRAIN_TIMESTEPS = 1000


def training_scheduler(prediction_type: str) -> SchedulerMixin:
    """The scheduler that defines noising and the target for `prediction_type`."""
    if prediction_type == "flow":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=TRAIN_TIMESTEPS, shift=1.0)
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction type {prediction_type!r}; choose from {', '.join(PREDICTION_TYPES)}")
    return DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2",
                         prediction_type=prediction_type, clip_sample=False)


def prediction_type_of(scheduler: SchedulerMixin) -> str:
    """Which target a model with this scheduler predicts."""
    if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        return "flow"
    kind = scheduler.config.prediction_type
    if kind not in ("epsilon", "v_prediction"):  # flow is FlowMatchEulerDiscreteScheduler's, above
        raise UserError(f"scheduler prediction_type {kind!r}: this model's scheduler config names no target it "
                        "was trained on (epsilon or v_prediction); fix scheduler/scheduler_config.json")
    return kind


def sampling_scheduler(scheduler: SchedulerMixin) -> SchedulerMixin:
    """A few-step sampler matching the training scheduler (DDIM, or Euler for flow matching)."""
    if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        return FlowMatchEulerDiscreteScheduler.from_config(scheduler.config)
    return DDIMScheduler.from_config(scheduler.config, set_alpha_to_one=True, timestep_spacing="trailing")


def sample_timesteps(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform training timesteps in [0, TRAIN_TIMESTEPS), shared by every target type."""
    return torch.randint(0, TRAIN_TIMESTEPS, (batch,), generator=generator)


def flow_sigma(timesteps: torch.Tensor) -> torch.Tensor:
    """Flow matching's noise level σ ∈ (0, 1] of integer timesteps (x_σ = (1 − σ)·x0 + σ·noise; t=999 is pure noise)."""
    return (timesteps.float() + 1) / TRAIN_TIMESTEPS


def noisy_and_target(
    scheduler: SchedulerMixin, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, what the model should predict) for clean latents x0, noise and integer timesteps [B]."""
    kind = prediction_type_of(scheduler)
    if kind == "flow":
        sigma = flow_sigma(timesteps).reshape(-1, *([1] * (x0.dim() - 1))).to(x0)
        return (1 - sigma) * x0 + sigma * noise, noise - x0
    noisy = scheduler.add_noise(x0, noise, timesteps)
    target = noise if kind == "epsilon" else scheduler.get_velocity(x0, noise, timesteps)
    return noisy, target


def model_timestep(scheduler: SchedulerMixin, timesteps: torch.Tensor) -> torch.Tensor:
    """The timestep value the model is conditioned on (for flow matching: σ·1000, as the sampler passes it)."""
    if prediction_type_of(scheduler) == "flow":
        return timesteps.float() + 1
    return timesteps
