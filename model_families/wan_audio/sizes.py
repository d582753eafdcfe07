"""The two wan-audio sizes and random-initialised model folders of them.

`1.3b` is Hallo4's shape: Wan2.1-VACE-1.3B's transformer (Wan2.1-T2V-1.3B's blocks plus a VACE block every
second layer), the Wan2.1 VAE, wav2vec2-base and Hallo4's audio projector, at Hallo4's 480×832 frames.
`tiny` keeps every part's structure at toy widths so a whole forward pass runs on a CPU in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
from transformers import Wav2Vec2Config, Wav2Vec2Model

from model_families.wan_audio.family import WanAudioFamily
from model_families.wan_audio.reference import context_channels
from model_families.wan_audio.transformer import WanAudioTransformer

Size = Literal["tiny", "1.3b"]
LATENT_CHANNELS = 16  # the Wan2.1 VAE's z_dim; tiny keeps it so the real latent statistics apply
TRAIN_TIMESTEPS = 1000
SAMPLING_SHIFT = 8.0  # Hallo4's default flow shift for sampling; training noises uniformly in σ


@dataclass(frozen=True)
class PartConfigs:
    """Constructor arguments of each part of one size."""

    denoiser: dict  # WanAudioTransformer
    vae: dict  # AutoencoderKLWan
    audio_encoder: dict  # Wav2Vec2Config


def _core(heads: int, head_dim: int, ffn: int, layers: int, text_dim: int, freq_dim: int) -> dict:
    """A WanVACETransformer3DModel config with a VACE block every second layer, as Wan2.1-VACE-1.3B has."""
    return dict(patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim,
                in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS, text_dim=text_dim, freq_dim=freq_dim,
                ffn_dim=ffn, num_layers=layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
                vace_layers=list(range(0, layers, 2)), vace_in_channels=context_channels(LATENT_CHANNELS))


SIZES: dict[str, PartConfigs] = {
    "tiny": PartConfigs(
        denoiser=dict(transformer_config=_core(heads=2, head_dim=16, ffn=64, layers=2, text_dim=16, freq_dim=32),
                      audio_window=2, audio_layers=2, audio_width=32, audio_hidden=32, audio_tokens=4,
                      pose_hidden=16, frame_height=32, frame_width=32),
        vae=dict(base_dim=8, z_dim=LATENT_CHANNELS),
        audio_encoder=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=16,
                           num_conv_pos_embedding_groups=2),
    ),
    "1.3b": PartConfigs(
        denoiser=dict(transformer_config=_core(heads=12, head_dim=128, ffn=8960, layers=30, text_dim=4096,
                                               freq_dim=256),
                      audio_window=2, audio_layers=12, audio_width=768, audio_hidden=512, audio_tokens=32,
                      pose_hidden=256, frame_height=480, frame_width=832),
        vae=dict(base_dim=96, z_dim=LATENT_CHANNELS),
        audio_encoder=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    ),
}


def training_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """The flow-matching scheduler every wan-audio folder carries (velocity target noise − x0)."""
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=TRAIN_TIMESTEPS, shift=SAMPLING_SHIFT)


def build_family(size: Size, seed: int = 0) -> WanAudioFamily:
    """A random-initialised wan-audio model of `size` in memory."""
    configs = SIZES[size]
    torch.manual_seed(seed)
    return WanAudioFamily(
        denoiser=WanAudioTransformer(**configs.denoiser),
        scheduler=training_scheduler(),
        encoders={"vae": AutoencoderKLWan(**configs.vae),
                  "audio_encoder": Wav2Vec2Model(Wav2Vec2Config(**configs.audio_encoder))},
    )


def init_model(size: Size, out: Path, seed: int = 0) -> Path:
    """Write a random-initialised wan-audio model folder of `size` to `out`; returns `out`."""
    out = Path(out)
    build_family(size, seed).save(out, f"# wan-audio {size}, random initialisation\n\n"
                                       f"Every part is freshly initialised with seed {seed}; it is not trained.\n")
    return out
