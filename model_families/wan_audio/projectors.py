"""The two condition projectors: wav2vec2 features → audio tokens, head pose → a per-latent-frame embedding.

Both take rows per *video* frame and return rows per *core* latent frame: the core's leading latent frames that
hold the reference image (see reference.py) get zeros, as Hallo4 gives its reference frame zero audio.
"""

from __future__ import annotations

import torch
from torch import nn

from model_families.wan_audio.frame_timing import TIME_STRIDE, group_by_latent_frame


def pad_front(rows: torch.Tensor, total: int) -> torch.Tensor:
    """[B, T, ...] → [B, total, ...] with zero rows in front (the reference latent frames)."""
    return torch.cat([rows.new_zeros(rows.shape[0], total - rows.shape[1], *rows.shape[2:]), rows], dim=1)


class AudioProjector(nn.Module):
    """Hallo4's audio projector: a window of all-layer wav2vec2 features → `tokens` tokens per video frame."""

    def __init__(self, window: int, layers: int, width: int, hidden: int, tokens: int, dim: int) -> None:
        super().__init__()
        self.tokens, self.dim = tokens, dim
        # Names and shapes follow Hallo4's AudioProjModel so its weights load as they are.
        self.proj1 = nn.Linear(window * layers * width, hidden)
        self.proj2 = nn.Linear(hidden, hidden)
        self.proj3 = nn.Linear(hidden, tokens * dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, audio: torch.Tensor, core_frames: int) -> torch.Tensor:
        """Features [B, F, window, layers, width] → tokens [B, core_frames, 4·tokens, dim] per latent frame."""
        grouped = group_by_latent_frame(audio.flatten(2))  # [B, T, 4, window·layers·width]
        hidden = torch.relu(self.proj2(torch.relu(self.proj1(grouped))))
        tokens = self.norm(self.proj3(hidden).unflatten(-1, (self.tokens, self.dim)))  # [B, T, 4, tokens, dim]
        return pad_front(tokens.flatten(2, 3), core_frames)


class PoseProjector(nn.Module):
    """Yaw/pitch/roll of a latent frame's 4 video frames → one embedding added to that frame's patch tokens."""

    def __init__(self, hidden: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(TIME_STRIDE * 3, hidden), nn.SiLU(), nn.Linear(hidden, dim))
        # Zero output: a fresh projector leaves the core's prediction unchanged.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, pose: torch.Tensor, core_frames: int) -> torch.Tensor:
        """Pose [B, F, 3] → [B, core_frames, dim]."""
        return pad_front(self.net(group_by_latent_frame(pose).flatten(2)), core_frames)
