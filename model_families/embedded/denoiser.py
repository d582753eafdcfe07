"""The embedded video denoiser: reference-conditioned, with audio and pose injected by temporal motion modulation.

Shapes: B clips, T latent frames (each ρ video frames), C latent channels, h×w latent grid, F = T·ρ video
frames, D motion features per video frame.

- The reference image's latent is concatenated to every latent frame's channels (as image-to-video
  models do), so samples keep the face.
- The output is γ(t)·x_t + β(t)·ref + e^{δ(t)}·F with γ, β, δ learned from the timestep (zero at init)
  and ref the reference latent tiled over ρ frames: every target (ε, v, flow velocity) is a mix of x_t and
  a scaled x0, and x0 is mostly the reference, so the trunk only adds what moves and the noise passes
  straight through.
- Temporal motion modulation (Hallo4): per-video-frame motion features [B, F, D] are regrouped ρ frames
  into the channel axis [B, T, ρ·D] (temporal channel redistribution), expanded by an MLP whose width is
  proportional to ρ into ρ tokens per latent frame, and injected by cross-attention of each latent
  frame's pixels to its own tokens. Every injection's output projection starts at zero, so training
  starts from the reference-only model and learns how much motion to let in.
"""

from __future__ import annotations

import torch
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import ResnetBlock2D
from torch import nn

from model_families.embedded.motion_features import redistribute


class MotionTokens(nn.Module):
    """Proportional feature expansion: [B, T, ρ·D] → [B·T, ρ, H] tokens, one per video frame of a latent frame."""

    def __init__(self, rho: int, feature_dim: int, token_dim: int) -> None:
        super().__init__()
        self.rho, self.token_dim = rho, token_dim
        self.expand = nn.Sequential(
            nn.Linear(rho * feature_dim, rho * token_dim), nn.SiLU(), nn.Linear(rho * token_dim, rho * token_dim)
        )
        self.slot = nn.Parameter(torch.zeros(rho, token_dim))

    def forward(self, grouped: torch.Tensor) -> torch.Tensor:
        b, t, _ = grouped.shape
        tokens = self.expand(grouped).reshape(b * t, self.rho, self.token_dim)
        return tokens + self.slot


class MotionBlock(nn.Module):
    """Residual block, temporal mixing across latent frames, and motion cross-attention."""

    def __init__(self, in_ch: int, out_ch: int, temb_ch: int, token_dim: int) -> None:
        super().__init__()
        self.resnet = ResnetBlock2D(in_channels=in_ch, out_channels=out_ch, temb_channels=temb_ch, groups=8)
        self.temporal = nn.Conv1d(out_ch, out_ch, kernel_size=3, padding=1)
        self.attn_norm = nn.GroupNorm(8, out_ch)
        self.attn = Attention(query_dim=out_ch, cross_attention_dim=token_dim, heads=4, dim_head=out_ch // 4)
        for zero in (self.temporal, self.attn.to_out[0]):
            nn.init.zeros_(zero.weight)
            nn.init.zeros_(zero.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor, tokens: torch.Tensor, frames: int) -> torch.Tensor:
        x = self.resnet(x, temb)  # [B·T, ch, h, w]
        bt, ch, h, w = x.shape
        seq = x.reshape(bt // frames, frames, ch, h * w).permute(0, 3, 2, 1).reshape(-1, ch, frames)
        seq = seq + self.temporal(seq)
        x = seq.reshape(bt // frames, h * w, ch, frames).permute(0, 3, 2, 1).reshape(bt, ch, h, w)
        query = self.attn_norm(x).flatten(2).transpose(1, 2)  # [B·T, h·w, ch]
        x = x + self.attn(query, encoder_hidden_states=tokens).transpose(1, 2).reshape(bt, ch, h, w)
        return x


class PortraitDenoiser(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """Predicts the diffusion target (ε, v or velocity) of a latent clip given reference, audio and pose.

    `sample_size` is the frame size in pixels the model was trained at (as in diffusers UNets).
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 192,
        reference_channels: int = 48,
        rho: int = 4,
        patch: int = 4,
        motion_dim: int = 131,
        channels: tuple[int, int] = (96, 192),
        token_dim: int = 128,
        sample_size: int = 64,
    ) -> None:
        super().__init__()
        c0, c1 = channels
        temb = c0 * 4
        self.time_proj = Timesteps(c0, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(c0, temb)
        self.tokens = MotionTokens(rho, motion_dim, token_dim)
        self.conv_in = nn.Conv2d(latent_channels + reference_channels, c0, 3, padding=1)
        self.down = MotionBlock(c0, c0, temb, token_dim)
        self.downsample = nn.Conv2d(c0, c1, 3, stride=2, padding=1)
        self.mid = nn.ModuleList([MotionBlock(c1, c1, temb, token_dim) for _ in range(2)])
        self.upsample = nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(c1, c1, 3, padding=1))
        self.up = MotionBlock(c1 + c0, c0, temb, token_dim)
        self.norm_out = nn.GroupNorm(8, c0)
        self.conv_out = nn.Conv2d(c0, latent_channels, 3, padding=1)
        self.skip_scales = nn.Linear(temb, 3)
        nn.init.zeros_(self.skip_scales.weight)
        nn.init.zeros_(self.skip_scales.bias)
        self.gradient_checkpointing = False

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, reference: torch.Tensor, motion: torch.Tensor
    ) -> torch.Tensor:
        """sample [B, T, C, h, w], timestep [B], reference [B, Cr, h, w], motion [B, T·ρ, D] → [B, T, C, h, w]."""
        b, t, c, h, w = sample.shape
        timestep = timestep.to(sample.device).float().reshape(-1).expand(b)
        temb = self.time_embedding(self.time_proj(timestep).to(sample.dtype))
        temb = temb.repeat_interleave(t, dim=0)
        tokens = self.tokens(redistribute(motion.to(sample.dtype), self.config.rho)).to(sample.dtype)
        ref = reference.to(sample.dtype).unsqueeze(1).expand(b, t, -1, h, w)
        x = self.conv_in(torch.cat([sample, ref], dim=2).reshape(b * t, -1, h, w))
        skip = x = self._block(self.down, x, temb, tokens, t)
        x = self.downsample(x)
        for block in self.mid:
            x = self._block(block, x, temb, tokens, t)
        x = self.upsample(x)
        x = self._block(self.up, torch.cat([x, skip], dim=1), temb, tokens, t)
        x = self.conv_out(nn.functional.silu(self.norm_out(x))).reshape(b, t, c, h, w)
        # Every target (ε, v, velocity) is γ(t)·x_t − c(t)·x0 for the right scalars. The noise in x_t reaches
        # the output through γ(t) instead of squeezing through a trunk narrower than the latent, and x0 starts
        # from the reference (tiled over the ρ frames of each latent frame), so the trunk only has to add
        # what moves: mouth, eyes, pose.
        gamma, beta, log_scale = self.skip_scales(temb[::t]).reshape(b, 3, 1, 1, 1, 1).unbind(1)
        tiled = reference.to(sample.dtype).repeat(1, self.config.rho, 1, 1).unsqueeze(1)
        return gamma * sample + beta * tiled + log_scale.exp() * x

    def _block(self, block: MotionBlock, x, temb, tokens, frames: int) -> torch.Tensor:
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return self._gradient_checkpointing_func(block, x, temb, tokens, frames)
        return block(x, temb, tokens, frames)
