"""Per-pair denoising errors: winner and loser under the same noise and timestep, in one forward pass.

The quantity Diffusion-DPO compares between policy and reference; the trainer and the evaluation's
implicit-reward accuracy both read it from here, for any model family.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model_families.family import Conditioning, ModelFamily
from model_families.targets import model_timestep, noisy_and_target


@dataclass(frozen=True)
class PairBatch:
    """The 2B batch [winners; losers] as the denoiser sees it, its targets, and (--dense) the weight of each
    latent frame's error [2B, T], the same for a pair's winner and loser."""

    noisy: torch.Tensor
    timestep: torch.Tensor
    conditioning: Conditioning
    target: torch.Tensor
    frame_weights: torch.Tensor | None = None


def pair_batch(scheduler, winners: torch.Tensor, losers: torch.Tensor, conditioning: Conditioning,
               noise: torch.Tensor, timesteps: torch.Tensor, device: torch.device | str,
               frame_weights: torch.Tensor | None = None) -> PairBatch:
    """Winners and losers noised with the same noise and timestep per pair, on `device`; `frame_weights`
    [B, T] weigh each latent frame's error of both clips of a pair (train.frame_weights)."""
    noisy, target = noisy_and_target(scheduler, torch.cat([winners, losers]), torch.cat([noise, noise]),
                                     torch.cat([timesteps, timesteps]))
    doubled = {k: torch.cat([v, v]).to(device) for k, v in conditioning.items()}
    doubled_weights = None if frame_weights is None else torch.cat([frame_weights, frame_weights]).to(device)
    return PairBatch(noisy.to(device), model_timestep(scheduler, torch.cat([timesteps, timesteps])).to(device),
                     doubled, target.to(device).float(), doubled_weights)


def pair_errors(family: ModelFamily, denoiser: torch.nn.Module,
                batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared error per sample, split into (winners, losers); with frame weights, each latent frame's
    squared errors count w_f times (latents are time-first, [2B, T, ...])."""
    prediction = family.predict(denoiser, batch.noisy, batch.timestep, batch.conditioning)
    squared = (prediction.float() - batch.target).pow(2)
    if batch.frame_weights is not None:  # a weight of exactly 1 leaves the errors bit for bit as they were
        squared = squared * batch.frame_weights.reshape(*batch.frame_weights.shape, *[1] * (squared.dim() - 2))
    per_sample = squared.flatten(1).mean(1)
    half = len(per_sample) // 2
    return per_sample[:half], per_sample[half:]
