"""The implicit reward judges a pair on its whole clip: windows that tile it, each with as many draws."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from eval import implicit_reward
from eval.implicit_reward import clip_windows, reward_margins


@pytest.mark.parametrize("length", [1, 3, 4, 7])
def test_the_windows_are_the_fewest_that_cover_the_clip(length):
    for frames in range(1, 30):
        starts = clip_windows(frames, length)
        covered = {f for s in starts for f in range(s, s + min(length, frames))}
        assert covered == set(range(frames))
        assert len(starts) == max(1, math.ceil(frames / length)) and starts == sorted(starts)
        assert all(0 <= s <= max(0, frames - length) for s in starts)


class Clips:
    """18 latent frames per pair; a window's latents carry their start so the stub errors can see it."""

    family = SimpleNamespace(usable_frames=lambda frames: frames, latent_frames=lambda frames: frames // 4)

    def __len__(self):
        return 2

    def frames(self, i):
        return 18

    def window(self, i, start, length):
        latents = torch.full((length, 1), float(start))
        return latents, latents, {}, torch.tensor(1.0)


def model():
    return SimpleNamespace(scheduler=None, denoiser=torch.nn.Linear(1, 1))


def test_a_preference_in_one_part_of_the_clip_counts_by_its_share(monkeypatch):
    """The policy denoises the winner better only in the first window: a middle window alone would see no
    preference; over the clip's 5 windows the margin is β/2 · (0.5 − 0) / 5."""
    policy, reference, seen = model(), model(), []

    def batch(scheduler, winners, losers, conditioning, noise, timesteps, device):
        seen.append((int(winners[0, 0, 0]), len(winners)))
        return SimpleNamespace(start=int(winners[0, 0, 0]), rows=len(winners))

    def errors(family, denoiser, batch):
        better = denoiser is policy.denoiser and batch.start == 0
        return torch.full((batch.rows,), 0.0 if better else 0.5), torch.full((batch.rows,), 0.5)

    monkeypatch.setattr(implicit_reward, "pair_batch", batch)
    monkeypatch.setattr(implicit_reward, "pair_errors", errors)
    margins = reward_margins(policy, reference, Clips(), beta=2.0, draws=8, window=16)
    assert margins == pytest.approx(np.full(2, 0.5 / 5))
    assert seen[:5] == [(0, 2), (4, 2), (7, 2), (10, 2), (14, 2)]  # 8 draws → 2 in each of the 5 windows
