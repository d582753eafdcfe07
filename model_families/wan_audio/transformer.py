"""The wan-audio denoiser: diffusers' Wan VACE transformer with Hallo4's audio and a head-pose input added.

The core is run block by block here (its own forward has no place for audio). Per block, as in Hallo4:
self-attention → text cross-attention → **audio cross-attention** (per latent frame, zero-initialised output) →
feed-forward, then the block's VACE hint is added. The pose embedding (zero-initialised) is added to the patch
tokens. With fresh audio and pose modules the output equals the bare core's, which the tests check.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from diffusers import WanVACETransformer3DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from model_families.wan_audio.audio_attention import AudioCrossAttention
from model_families.wan_audio.projectors import AudioProjector, PoseProjector


class WanAudioTransformer(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """Wan VACE core + audio projector + per-block audio cross-attention + pose projector."""

    _supports_gradient_checkpointing = True
    _keep_in_fp32_modules = WanVACETransformer3DModel._keep_in_fp32_modules

    @register_to_config
    def __init__(
        self,
        transformer_config: dict,
        audio_window: int = 2,
        audio_layers: int = 12,
        audio_width: int = 768,
        audio_hidden: int = 512,
        audio_tokens: int = 32,
        pose_hidden: int = 256,
        frame_height: int = 480,
        frame_width: int = 832,
    ) -> None:
        super().__init__()
        self.transformer = WanVACETransformer3DModel(**transformer_config)
        core = self.transformer.config
        dim = core.num_attention_heads * core.attention_head_dim
        self.audio_proj = AudioProjector(2 * audio_window + 1, audio_layers, audio_width, audio_hidden,
                                         audio_tokens, dim)
        self.pose_proj = PoseProjector(pose_hidden, dim)
        self.audio_attn = nn.ModuleList(
            AudioCrossAttention(dim, core.num_attention_heads, core.eps) for _ in range(core.num_layers))
        self.gradient_checkpointing = False

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        control_hidden_states: torch.Tensor,
        audio: torch.Tensor,
        pose: torch.Tensor,
    ) -> torch.Tensor:
        """The core's inputs ([B, C, T, h, w] latents and VACE context, timesteps [B], text [B, L, text_dim]) plus
        per-video-frame audio features [B, F, window, layers, width] and pose [B, F, 3] → the core's output."""
        core = self.transformer
        batch, _, frames, height, width = hidden_states.shape
        p_t, p_h, p_w = core.config.patch_size
        grid = (frames // p_t, height // p_h, width // p_w)

        rotary = core.rope(hidden_states)
        tokens = core.patch_embedding(hidden_states).flatten(2).transpose(1, 2)
        tokens = tokens + self.pose_proj(pose, grid[0]).repeat_interleave(grid[1] * grid[2], dim=1)
        control = core.vace_patch_embedding(control_hidden_states).flatten(2).transpose(1, 2)
        temb, timestep_proj, text, _ = core.condition_embedder(timestep, encoder_hidden_states, None)
        timestep_proj = timestep_proj.unflatten(1, (6, -1))
        audio_tokens = self.audio_proj(audio, grid[0])

        hints = []
        for vace_block in core.vace_blocks:
            hint, control = self._run(vace_block, tokens, text, control, timestep_proj, rotary)
            hints.append(hint)
        hint_of_block = dict(zip(core.config.vace_layers, hints))
        for index in range(len(core.blocks)):
            tokens = self._run(self._block, index, tokens, text, timestep_proj, rotary, audio_tokens)
            if index in hint_of_block:
                tokens = tokens + hint_of_block[index]

        shift, scale = (core.scale_shift_table + temb.unsqueeze(1)).chunk(2, dim=1)
        tokens = (core.norm_out(tokens.float()) * (1 + scale) + shift).type_as(tokens)
        out = core.proj_out(tokens).reshape(batch, *grid, p_t, p_h, p_w, -1)
        return out.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)

    def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call `function(*args)`, through activation checkpointing when it is enabled and gradients are on."""
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(function, *args)
        return function(*args)

    def _block(self, index: int, tokens: torch.Tensor, text: torch.Tensor, timestep_proj: torch.Tensor,
               rotary: tuple[torch.Tensor, torch.Tensor], audio_tokens: torch.Tensor) -> torch.Tensor:
        """Core block `index` with the audio cross-attention between its text cross-attention and feed-forward.

        The steps are WanTransformerBlock.forward's (Wan 2.1 timestep layout); the audio sits where Hallo4 puts it.
        """
        block = self.transformer.blocks[index]
        shift, scale, gate, c_shift, c_scale, c_gate = (block.scale_shift_table + timestep_proj.float()).chunk(6, dim=1)
        normed = (block.norm1(tokens.float()) * (1 + scale) + shift).type_as(tokens)
        tokens = (tokens.float() + block.attn1(normed, None, None, rotary) * gate).type_as(tokens)
        tokens = tokens + block.attn2(block.norm2(tokens.float()).type_as(tokens), text, None, None)
        tokens = tokens + self.audio_attn[index](tokens, audio_tokens)
        normed = (block.norm3(tokens.float()) * (1 + c_scale) + c_shift).type_as(tokens)
        return (tokens.float() + block.ffn(normed).float() * c_gate).type_as(tokens)
