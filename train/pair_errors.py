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
    """The 2B batch [winners; losers] as the denoiser sees it, and its targets."""

    noisy: torch.Tensor
    timestep: torch.Tensor
    conditioning: Conditioning
    target: torch.Tensor


def pair_batch(scheduler, winners: torch.Tensor, losers: torch.Tensor, conditioning: Conditioning,
               noise: torch.Tensor, timesteps: torch.Tensor, device: torch.device | str) -> PairBatch:
    """Winners and losers noised with the same noise and timestep per pair, on `device`."""
    noisy, target = noisy_and_target(scheduler, torch.cat([winners, losers]), torch.cat([noise, noise]),
                                     torch.cat([timesteps, timesteps]))
    doubled = {k: torch.cat([v, v]).to(device) for k, v in conditioning.items()}
    return PairBatch(noisy.to(device), model_timestep(scheduler, torch.cat([timesteps, timesteps])).to(device),
                     doubled, target.to(device).float())


def pair_errors(family: ModelFamily, denoiser: torch.nn.Module,
                batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared error per sample, split into (winners, losers)."""
    prediction = family.predict(denoiser, batch.noisy, batch.timestep, batch.conditioning)
    per_sample = (prediction.float() - batch.target).pow(2).flatten(1).mean(1)
    half = len(per_sample) // 2
    return per_sample[:half], per_sample[half:]
