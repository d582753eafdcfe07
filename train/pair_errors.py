"""Per-pair denoising errors: winner and loser under the same noise and timestep, in one forward pass.

The quantity Diffusion-DPO compares between policy and reference; the trainer and the evaluation's
implicit-reward accuracy both read it from here.
"""

from __future__ import annotations

import torch

from train.targets import model_timestep, noisy_and_target


def pair_inputs(scheduler, winners: torch.Tensor, losers: torch.Tensor, references: torch.Tensor,
                motion: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
                device: torch.device | str) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """(model inputs for the 2B batch [winners; losers], targets) with noise and timestep shared per pair."""
    noisy, target = noisy_and_target(scheduler, torch.cat([winners, losers]), torch.cat([noise, noise]),
                                     torch.cat([timesteps, timesteps]))
    inputs = (noisy.to(device), model_timestep(scheduler, torch.cat([timesteps, timesteps])).to(device),
              torch.cat([references, references]).to(device), torch.cat([motion, motion]).to(device))
    return inputs, target.to(device).float()


def pair_errors(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...],
                target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared error per sample, split into (winners, losers)."""
    per_sample = (model(*inputs).float() - target).pow(2).flatten(1).mean(1)
    half = len(per_sample) // 2
    return per_sample[:half], per_sample[half:]
