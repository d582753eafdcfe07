"""Implicit-reward accuracy on held-out pairs: does the policy, relative to the reference, prefer the human winner?

For each pair, winner and loser are noised alike (fixed noise/timestep draws, the same for both models)
and the DPO implicit reward margin is averaged over the draws:
`margin = −β/2 · [(e_θ,w − e_θ,l) − (e_ref,w − e_ref,l)]`; the pair counts as correct when it is > 0.

The draws are spread evenly over windows that tile the whole clip, because a preference is about the
whole clip and `train dpo` learns from windows anywhere in it; one window in the middle of a 3 s clip
saw a quarter of it. Windows of equal shape go through the models in one batch, so a pair costs about
what its draws cost in one window.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm import tqdm

from model_families.family import ModelFamily
from train.pair_errors import pair_batch, pair_errors
from train.preference_data import PreferenceSet, stack_conditioning
from model_families.targets import sample_timesteps


def clip_windows(frames: int, length: int) -> list[int]:
    """Starts of the fewest evenly spaced windows of `length` latent frames that cover `frames` latent frames."""
    if frames <= length:
        return [0]
    count = math.ceil(frames / length)
    return sorted({round(start) for start in np.linspace(0, frames - length, count)})


@torch.no_grad()
def reward_margins(policies: dict[str, ModelFamily], reference: ModelFamily, data: PreferenceSet, beta: float,
                   draws: int = 8, window: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Implicit reward margin per pair of each policy (by name): the mean over at least `draws` noise/timestep
    draws shared by all models, as many in each window of `window` video frames that together cover the clip.
    The reference's errors are computed once for all policies."""
    length = data.family.latent_frames(data.family.usable_frames(window))
    device = next(reference.denoiser.parameters()).device
    margins = {name: np.zeros(len(data)) for name in policies}
    for i in tqdm(range(len(data)), desc="implicit reward", unit="pair"):
        size = min(length, data.frames(i))
        starts = clip_windows(data.frames(i), size)
        each = math.ceil(draws / len(starts))  # every window counts the same
        generator = torch.Generator().manual_seed(seed * 1_000_003 + i)
        inside: dict[str, list[torch.Tensor]] = {name: [] for name in policies}
        for windows in _alike([data.window(i, start, size)[:3] for start in starts]):
            rows = [part for part in windows for _ in range(each)]  # one forward pass for all alike windows
            winners, losers = torch.stack([w for w, _, _ in rows]), torch.stack([l for _, l, _ in rows])
            noise = torch.randn(winners.shape, generator=generator)
            timesteps = sample_timesteps(len(rows), generator)
            batch = pair_batch(reference.scheduler, winners, losers, stack_conditioning([c for _, _, c in rows]),
                               noise, timesteps, device)
            reference_w, reference_l = pair_errors(reference, reference.denoiser, batch)
            for name, policy in policies.items():
                policy_w, policy_l = pair_errors(policy, policy.denoiser, batch)
                inside[name].append(-beta / 2 * ((policy_w - policy_l) - (reference_w - reference_l)))
        for name in policies:
            margins[name][i] = float(torch.cat(inside[name]).mean())
    return margins


def _alike(windows: list[tuple]) -> list[list[tuple]]:
    """Windows grouped by their tensors' shapes, so each group stacks into one batch (a causal VAE's first
    window spans fewer video frames than the others)."""
    groups: dict[tuple, list[tuple]] = {}
    for window in windows:
        winner, _, conditioning = window
        key = (tuple(winner.shape), *sorted((k, tuple(v.shape)) for k, v in conditioning.items()))
        groups.setdefault(key, []).append(window)
    return list(groups.values())
