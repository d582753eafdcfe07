"""Implicit-reward accuracy on held-out pairs: does the policy, relative to the reference, prefer the human winner?

For each pair, winner and loser are noised alike (several fixed noise/timestep draws, the same for
both models) and the DPO implicit reward margin is averaged over the draws:
`margin = −β/2 · [(e_θ,w − e_θ,l) − (e_ref,w − e_ref,l)]`; the pair counts as correct when it is > 0.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from model_families.family import ModelFamily
from train.pair_errors import pair_batch, pair_errors
from train.preference_data import PreferenceSet
from model_families.targets import sample_timesteps


@torch.no_grad()
def reward_margins(policy: ModelFamily, reference: ModelFamily, data: PreferenceSet, beta: float,
                   draws: int = 8, window: int = 16, seed: int = 0) -> np.ndarray:
    """Implicit reward margin per pair (mean over `draws` shared noise/timestep draws) on a fixed window."""
    length = data.family.latent_frames(data.family.usable_frames(window))
    margins = np.zeros(len(data))
    for i in tqdm(range(len(data)), desc="implicit reward", unit="pair"):
        start = max(0, (data.frames(i) - length) // 2)  # the middle of the clip, the same for every run
        winner, loser, conditioning, _ = data.window(i, start, min(length, data.frames(i)))
        generator = torch.Generator().manual_seed(seed * 1_000_003 + i)
        noise = torch.randn((draws, *winner.shape), generator=generator)
        timesteps = sample_timesteps(draws, generator)
        repeat = lambda x: x[None].expand(draws, *x.shape)  # noqa: E731 - one draw per batch row
        batch = pair_batch(policy.scheduler, repeat(winner), repeat(loser),
                           {k: repeat(v) for k, v in conditioning.items()}, noise, timesteps,
                           next(policy.denoiser.parameters()).device)
        policy_w, policy_l = pair_errors(policy, policy.denoiser, batch)
        reference_w, reference_l = pair_errors(reference, reference.denoiser, batch)
        inside = -beta / 2 * ((policy_w - policy_l) - (reference_w - reference_l))
        margins[i] = float(inside.mean())
    return margins
