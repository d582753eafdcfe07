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
    policy, indifferent, reference, seen = model(), model(), model(), []
    reference_passes = []

    def batch(scheduler, winners, losers, conditioning, noise, timesteps, device):
        seen.append(winners[:, 0, 0].int().tolist())
        return winners[:, 0, 0]  # each row's window start

    def errors(family, denoiser, starts):
        if denoiser is reference.denoiser:
            reference_passes.append(len(starts))
        better = (starts == 0) & (denoiser is policy.denoiser)
        return torch.where(better, 0.0, 0.5), torch.full(starts.shape, 0.5)

    monkeypatch.setattr(implicit_reward, "pair_batch", batch)
    monkeypatch.setattr(implicit_reward, "pair_errors", errors)
    margins = reward_margins({"policy": policy, "sft": indifferent}, reference, Clips(), beta=2.0, draws=8, window=16)
    assert margins["policy"] == pytest.approx(np.full(2, 0.5 / 5))
    assert margins["sft"] == pytest.approx(np.zeros(2))  # denoises winner and loser alike, as the reference
    # 8 draws → 2 in each of the 5 windows, all in one batch (the windows are alike), shared by both policies,
    # and the reference's errors computed once per batch for both
    assert seen == [[0, 0, 4, 4, 7, 7, 10, 10, 14, 14]] * 2 and reference_passes == [10, 10]


def test_windows_of_another_shape_go_in_a_batch_of_their_own(monkeypatch):
    """A causal VAE's first window spans fewer video frames: its conditioning cannot stack with the others'."""
    class Causal(Clips):
        def window(self, i, start, length):
            latents, _, _, weight = super().window(i, start, length)
            return latents, latents, {"audio": torch.zeros(13 if start == 0 else 16, 2)}, weight

    seen = []
    monkeypatch.setattr(implicit_reward, "pair_batch",
                        lambda scheduler, winners, *rest: seen.append(winners[:, 0, 0].int().tolist()) or winners)
    monkeypatch.setattr(implicit_reward, "pair_errors", lambda family, denoiser, batch: (batch[:, 0, 0], batch[:, 0, 0]))
    margins = reward_margins({"policy": model()}, model(), Causal(), beta=2.0, draws=8, window=16)
    assert margins["policy"] == pytest.approx([0.0, 0.0])
    assert seen[:2] == [[0, 0], [4, 4, 7, 7, 10, 10, 14, 14]]
