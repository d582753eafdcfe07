"""Pixels ↔ normalised Wan VAE latents, time-first, as diffusers' Wan pipelines scale them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan


def fit_frames(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 [F, H, W, 3] → float [3, F, height, width] in [-1, 1]: centre-cropped to the aspect, then resized."""
    video = torch.tensor(np.asarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1  # a copy: frames may be read-only
    h, w = video.shape[-2:]
    crop_h, crop_w = min(h, round(w * height / width)), min(w, round(h * width / height))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    video = video[..., top:top + crop_h, left:left + crop_w]
    if (crop_h, crop_w) != (height, width):
        video = F.interpolate(video, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return video.clamp(-1, 1).transpose(0, 1)


def _statistics(vae: AutoencoderKLWan, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The VAE's per-channel latent mean and std, shaped [1, C, 1, 1, 1] like `like`."""
    shape = (1, vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean).view(shape).to(like)
    std = torch.tensor(vae.config.latents_std).view(shape).to(like)
    return mean, std


@torch.no_grad()
def encode(vae: AutoencoderKLWan, video: torch.Tensor) -> torch.Tensor:
    """Video [B, 3, F, H, W] in [-1, 1] → normalised latents [B, T, C, h, w] (the posterior mean: deterministic)."""
    latents = vae.encode(video.to(vae.device, vae.dtype)).latent_dist.mean
    mean, std = _statistics(vae, latents)
    return ((latents - mean) / std).transpose(1, 2)


@torch.no_grad()
def decode(vae: AutoencoderKLWan, latents: torch.Tensor) -> np.ndarray:
    """Normalised latents [B, T, C, h, w] → uint8 [B, F, H, W, 3]."""
    latents = latents.transpose(1, 2).to(vae.device, vae.dtype)
    mean, std = _statistics(vae, latents)
    video = vae.decode(latents * std + mean).sample.float().clamp(-1, 1)
    return ((video + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()
