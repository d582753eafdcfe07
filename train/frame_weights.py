"""`train dpo --dense`: per-latent-frame weights of the denoising error, from the segment marks of a pair.

Annotators mark the spans (seconds) where a clip fails the pair's criterion (`chosen_marks`, `rejected_marks` of
the exported dataset). For each latent frame f of a training window, o_l(f) and o_w(f) ∈ [0, 1] are the shares of
its time span covered by the loser's and the winner's marks; latent frame f covers the video frames the model
family says (`video_span`: 4 per latent frame for the embedded model, 1 then 4 each for wan-audio's causal VAE),
frame n lasting [n/FPS, (n+1)/FPS). The weights are

    u_f = 1 + λ · max(0, o_l(f) − o_w(f)),    w_f = u_f · T / Σ_g u_g    (mean weight 1 over the T frames),

λ = `--dense-weight`. Frames where only the loser fails carry the preference and count more; where the winner is
marked as failing too, neither clip is better there, so they get no extra weight (never less than an unmarked
frame: the winner's marks alone leave the pair as it was). A pair without marks, or with λ = 0, has every w_f = 1
exactly, so it trains exactly as without --dense.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from data_schemas.constants import FPS
from model_families.family import ModelFamily

Spans = Sequence[Sequence[float]]


def covered_share(spans: Spans, start_s: float, end_s: float) -> float:
    """The share of [start_s, end_s) that the (disjoint) spans cover."""
    covered = sum(max(0.0, min(end, end_s) - max(start, start_s)) for start, end in spans)
    return min(1.0, covered / (end_s - start_s))


def latent_frame_coverage(spans: Spans, family: ModelFamily, start: int, length: int,
                          fps: float = FPS) -> torch.Tensor:
    """[length]: the share of each latent frame start … start+length−1 that the spans cover."""
    shares = []
    for frame in range(start, start + length):
        first, end = family.video_span(frame, 1)
        shares.append(covered_share(spans, first / fps, end / fps))
    return torch.tensor(shares, dtype=torch.float32)


def dense_frame_weights(winner_coverage: torch.Tensor, loser_coverage: torch.Tensor, strength: float) -> torch.Tensor:
    """The weights w_f of the module's formula for one window's coverages (same shape); their mean is 1."""
    raw = 1.0 + strength * (loser_coverage - winner_coverage).clamp_min(0.0)
    return raw * (raw.numel() / raw.sum())
