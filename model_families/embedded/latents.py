"""The embedded model's latent space: an exact space-time patchify of the video.

Real portrait models encode video with a 3D VAE that compresses time by ρ frames per latent frame.
The embedded model uses the lossless counterpart: each latent frame stacks ρ consecutive video frames'
p×p pixel patches in its channels. Decoding inverts it exactly, so no VAE has to be trained or faked,
and the latent frames are temporally compressed exactly as the motion modulation expects.
"""

from __future__ import annotations

import numpy as np
import torch


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 [..., F, H, W, 3] → float [..., F, 3, H, W] in [-1, 1]."""
    # Images decoded by `datasets` arrive read-only; torch wants a writable array (copied only then).
    x = torch.from_numpy(np.require(frames, requirements=["C", "W"])).float().div(127.5).sub(1.0)
    return x.movedim(-1, -3)


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """float [..., F, 3, H, W] in [-1, 1] → uint8 [..., F, H, W, 3]."""
    return x.movedim(-3, -1).add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def patchify(video: torch.Tensor, rho: int, patch: int) -> torch.Tensor:
    """[B, F, C, H, W] → [B, F/ρ, ρ·C·p², H/p, W/p]."""
    b, f, c, h, w = video.shape
    if f % rho or h % patch or w % patch:
        raise ValueError(f"video {tuple(video.shape)} does not divide into ρ={rho} frames × {patch}px patches")
    x = video.reshape(b, f // rho, rho, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 1, 2, 3, 5, 7, 4, 6)  # b, t, ρ, c, py, px, h', w'
    return x.reshape(b, f // rho, rho * c * patch * patch, h // patch, w // patch)


def unpatchify(latents: torch.Tensor, rho: int, patch: int, channels: int = 3) -> torch.Tensor:
    """Exact inverse of `patchify`: [B, T, ρ·C·p², h, w] → [B, T·ρ, C, h·p, w·p]."""
    b, t, _, h, w = latents.shape
    x = latents.reshape(b, t, rho, channels, patch, patch, h, w)
    x = x.permute(0, 1, 2, 3, 6, 4, 7, 5)  # b, t, ρ, c, h', py, w', px
    return x.reshape(b, t * rho, channels, h * patch, w * patch)
