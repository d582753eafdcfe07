"""Diffusers video denoisers (UNet3DConditionModel, CogVideoXTransformer3DModel) behind the embedded denoiser's call.

The trainer, the evaluation and the sampler call a denoiser as `model(noisy, timestep, reference,
motion)` on the embedded latent layout ([B, T, C, h, w] clips, [B, 3·p², h, w] reference, [B, F, D]
motion). This adapter gives a diffusers video model that call, the way image-to-video variants
condition (CogVideoX-I2V concatenates the image latent to the noisy latent):

- the reference latent, tiled over time, and the motion features of each latent frame (its ρ video
  frames, projected to a few channels and broadcast over space) are concatenated to the noisy latent
  along channels, so the core's `in_channels` is latent + reference + motion channels;
- the reference's patches, projected, are the cross-attention tokens (`encoder_hidden_states`).

The adapter is a diffusers ModelMixin: `save_pretrained` / `from_pretrained` keep core and projections
together, and an adapter folder is a model folder like the embedded one (`train dpo --model DIR`).
"""

from __future__ import annotations

import torch
from diffusers import CogVideoXTransformer3DModel, UNet3DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

FAMILIES = {"unet3d": UNet3DConditionModel, "cogvideox": CogVideoXTransformer3DModel}


def core_in_channels(latent_channels: int, reference_channels: int, motion_channels: int) -> int:
    """What the core's `in_channels` must be for this adapter."""
    return latent_channels + reference_channels + motion_channels


class VideoDenoiserAdapter(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """A diffusers video denoiser (`family`, rebuilt from `core_config`) with the embedded denoiser's call."""

    @register_to_config
    def __init__(
        self,
        family: str,
        core_config: dict,
        latent_channels: int = 192,
        reference_channels: int = 48,
        rho: int = 4,
        patch: int = 4,
        motion_dim: int = 131,
        motion_channels: int = 8,
        token_dim: int = 32,
        sample_size: int = 64,
    ) -> None:
        super().__init__()
        if family not in FAMILIES:
            raise ValueError(f"family {family!r}: choose from {', '.join(FAMILIES)}")
        self.core = FAMILIES[family].from_config(core_config)
        expected = core_in_channels(latent_channels, reference_channels, motion_channels)
        if self.core.config.in_channels != expected or self.core.config.out_channels != latent_channels:
            raise ValueError(f"core in/out channels must be {expected}/{latent_channels} "
                             f"(latent {latent_channels} + reference {reference_channels} + motion {motion_channels})")
        self.motion_proj = nn.Linear(rho * motion_dim, motion_channels)
        self.reference_proj = nn.Linear(reference_channels, token_dim)

    def forward(self, noisy: torch.Tensor, timestep: torch.Tensor, reference: torch.Tensor,
                motion: torch.Tensor) -> torch.Tensor:
        b, t, _, h, w = noisy.shape
        per_frame = self.motion_proj(motion.reshape(b, t, -1))  # [B, T, m]: a latent frame's ρ video frames
        x = torch.cat([noisy, reference[:, None].expand(b, t, -1, h, w),
                       per_frame[..., None, None].expand(-1, -1, -1, h, w)], dim=2)
        tokens = self.reference_proj(reference.flatten(2).transpose(1, 2))  # [B, h·w, token_dim]
        if self.config.family == "unet3d":  # channels before frames
            out = self.core(x.transpose(1, 2), timestep, encoder_hidden_states=tokens).sample
            return out.transpose(1, 2)
        return self.core(hidden_states=x, encoder_hidden_states=tokens, timestep=timestep).sample
