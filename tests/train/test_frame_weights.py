"""The --dense per-latent-frame weights: which frames the marks cover, for each family's frame mapping, and how the
weights raise the marked frames' share of a pair's denoising error."""

import pytest
import torch

from model_families.wan_audio import frame_timing
from train.frame_weights import covered_share, dense_frame_weights, latent_frame_coverage
from train.pair_errors import PairBatch, pair_errors


class Embedded:  # 4 video frames per latent frame
    video_span = staticmethod(lambda start, length: (4 * start, 4 * (start + length)))


class Causal:  # wan-audio: latent frame 0 is video frame 0 alone, then 4 each
    video_span = staticmethod(frame_timing.video_span)


def test_coverage_follows_each_familys_frame_mapping():
    assert covered_share([[0.0, 0.1], [0.3, 1.0]], 0.0, 0.4) == pytest.approx(0.5)
    # At 25 fps a latent frame of 4 video frames lasts 0.16 s: [0.16, 0.32) is half covered by [0.24, 0.5).
    assert latent_frame_coverage([[0.24, 0.5]], Embedded(), 0, 4).tolist() == pytest.approx([0.0, 0.5, 1.0, 0.125])
    # wan-audio: latent 0 = [0, 0.04), latent 1 = [0.04, 0.2), latent 2 = [0.2, 0.36).
    assert latent_frame_coverage([[0.0, 0.04]], Causal(), 0, 3).tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert latent_frame_coverage([[0.2, 0.36]], Causal(), 1, 2).tolist() == pytest.approx([0.0, 1.0])


def test_loser_marks_raise_their_frames_and_the_mean_weight_stays_one():
    none = torch.zeros(4)
    loser = torch.tensor([0.0, 1.0, 0.5, 0.0])
    weights = dense_frame_weights(none, loser, 2.0)
    # u = [1, 3, 2, 1], mean 7/4 → w = u · 4/7
    assert weights.tolist() == pytest.approx([4 / 7, 12 / 7, 8 / 7, 4 / 7])
    assert weights.mean().item() == pytest.approx(1.0)
    assert torch.equal(dense_frame_weights(none, none, 2.0), torch.ones(4))  # no marks: exactly 1
    assert torch.equal(dense_frame_weights(loser, none, 2.0), torch.ones(4))  # the winner's alone: as before
    assert torch.equal(dense_frame_weights(loser, loser, 2.0), torch.ones(4))  # both fail there: no preference
    assert torch.equal(dense_frame_weights(none, loser, 0.0), torch.ones(4))  # λ = 0: off


def test_weighted_errors_count_the_marked_frames_more():
    class Identity:  # predicts zero: the error is the target itself
        @staticmethod
        def predict(denoiser, noisy, timestep, conditioning):
            return torch.zeros_like(noisy)

    # One pair, 4 latent frames: the loser's error sits in frame 1 only, the winner's is spread evenly.
    target = torch.zeros(2, 4, 3)
    target[0] = 0.5
    target[1, 1] = 1.0
    plain = PairBatch(torch.zeros_like(target), torch.zeros(2), {}, target)
    weights = dense_frame_weights(torch.zeros(4), torch.tensor([0.0, 1.0, 0.0, 0.0]), 2.0)[None]
    dense = PairBatch(torch.zeros_like(target), torch.zeros(2), {}, target, torch.cat([weights, weights]))
    winner, loser = pair_errors(Identity, None, plain)
    dense_winner, dense_loser = pair_errors(Identity, None, dense)
    assert dense_loser.item() == pytest.approx(loser.item() * 3 / 1.5)  # frame 1 weighs 3 / mean(1, 3, 1, 1)
    assert dense_winner.item() == pytest.approx(winner.item())  # an even error: the weights' mean is 1


def test_a_pairs_coverage_is_computed_once_and_every_window_weighs_as_its_own(monkeypatch):
    import numpy as np

    import train.preference_data
    from train.preference_data import PreferenceSet

    class Family(Embedded):
        time_aligned = ()
        usable_frames = staticmethod(lambda frames: frames - frames % 4)
        latent_frames = staticmethod(lambda frames: frames // 4)

    latents = {"w": torch.zeros(8, 1), "l": torch.zeros(8, 1), "v": torch.zeros(6, 1)}
    marks = ([[[0.0, 0.2]], None], [[[0.16, 0.5], [0.9, 1.2]], [[0.3, 0.4]]])
    data = PreferenceSet(["w", "v"], ["l", "l"], ["c", "c"], torch.ones(2), latents, {"c": {}}, Family(),
                         marks=marks, dense_weight=2.0)
    calls = []
    real = train.preference_data.latent_frame_coverage
    monkeypatch.setattr(train.preference_data, "latent_frame_coverage",
                        lambda *args, **kwargs: calls.append(args) or real(*args, **kwargs))
    for seed in range(10):
        data.batch(np.random.default_rng(seed), 3, 12)  # 3 latent frames per window
    assert len(calls) == 4  # both sides of each of the 2 pairs, once, however many windows
    for i in range(2):
        for start in range(data.frames(i) - 2):
            coverage = [latent_frame_coverage(sides[i] or [], Family(), start, 3) for sides in marks]
            assert torch.equal(data.frame_weights(i, start, 3), dense_frame_weights(*coverage, 2.0))
