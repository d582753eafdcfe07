"""How video frames map onto the Wan VAE's latent frames (causal, 4× in time).

Latent frame 0 holds video frame 0 alone; latent frame k ≥ 1 holds video frames 4k−3 … 4k. So a clip the VAE
can take has 4k+1 frames, and a window of latent frames starting at k ≥ 1 covers exactly 4 video frames each.
"""

from __future__ import annotations

import torch

from data_schemas import UserError

TIME_STRIDE = 4  # video frames per latent frame after the first


def latent_frames(frames: int) -> int:
    """Latent frames of a clip of `frames` video frames; UserError for a length the VAE cannot take."""
    if frames < 1 or (frames - 1) % TIME_STRIDE:
        nearest = max(1, TIME_STRIDE * round((frames - 1) / TIME_STRIDE) + 1)
        raise UserError(f"a clip of {frames} frames: the Wan VAE takes 4k+1 frames; use {nearest} frames "
                        "(or another 4k+1 length such as 81)")
    return (frames - 1) // TIME_STRIDE + 1


def valid_length(frames: int) -> int:
    """The shortest clip length ≥ `frames` that the VAE takes (4k+1)."""
    return -(-(max(frames, 1) - 1) // TIME_STRIDE) * TIME_STRIDE + 1


def usable_length(frames: int) -> int:
    """The longest clip length ≤ `frames` that the VAE takes (4k+1); UserError for an empty clip."""
    if frames < 1:
        raise UserError(f"a clip of {frames} frames: the Wan VAE needs at least 1 frame (4k+1 frames)")
    return (frames - 1) // TIME_STRIDE * TIME_STRIDE + 1


def video_span(start: int, length: int) -> tuple[int, int]:
    """Video frames [first, end) covered by latent frames [start, start + length)."""
    first = 0 if start == 0 else TIME_STRIDE * start - (TIME_STRIDE - 1)
    return first, TIME_STRIDE * (start + length - 1) + 1


def group_by_latent_frame(rows: torch.Tensor) -> torch.Tensor:
    """Per-video-frame rows [B, F, ...] → [B, T, 4, ...], one group of 4 per latent frame.

    F is 4T−3 for a span starting at latent frame 0, whose single frame is repeated to fill its 4 slots (as
    Hallo4 does), or 4T for a span starting later.
    """
    frames = rows.shape[1]
    groups = -(-frames // TIME_STRIDE)
    missing = TIME_STRIDE * groups - frames
    if missing not in (0, TIME_STRIDE - 1):
        raise ValueError(f"{frames} video frames do not span whole latent frames (need 4T-3 or 4T)")
    rows = torch.cat([rows[:, :1].expand(-1, missing, *rows.shape[2:]), rows], dim=1)
    return rows.unflatten(1, (groups, TIME_STRIDE))
