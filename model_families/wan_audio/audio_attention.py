"""Temporal motion modulation (Hallo4): each latent frame's tokens attend to the audio tokens of its own frames."""

from __future__ import annotations

import torch
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanAttention, WanAttnProcessor
from torch import nn


class AudioCrossAttention(nn.Module):
    """One block's audio cross-attention: queries are one latent frame's tokens, keys/values its audio tokens."""

    def __init__(self, dim: int, heads: int, eps: float) -> None:
        super().__init__()
        # Hallo4's audio_cross_norm + audio_cross_attn; the core's attention class, so LoRA targets the same names.
        self.norm = FP32LayerNorm(dim, eps, elementwise_affine=True)
        self.attn = WanAttention(dim=dim, heads=heads, dim_head=dim // heads, eps=eps,
                                 cross_attention_dim_head=dim // heads, processor=WanAttnProcessor())
        # Zero output: a fresh module adds nothing, so the core predicts exactly as it did before.
        nn.init.zeros_(self.attn.to_out[0].weight)
        nn.init.zeros_(self.attn.to_out[0].bias)

    def forward(self, tokens: torch.Tensor, audio_tokens: torch.Tensor) -> torch.Tensor:
        """Tokens [B, T·h·w, D] and audio tokens [B, T, n, D] → the update to add to the tokens [B, T·h·w, D]."""
        batch, frames = audio_tokens.shape[:2]
        # Tokens are time-major (the core flattens [T, h, w]), so one row per latent frame attends on its own.
        queries = self.norm(tokens.float()).type_as(tokens).reshape(batch * frames, -1, tokens.shape[-1])
        update = self.attn(queries, audio_tokens.flatten(0, 1).to(tokens.dtype))
        return update.reshape(tokens.shape)
