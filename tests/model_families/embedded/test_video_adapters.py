"""Diffusion-DPO on diffusers video denoisers: real steps on a tiny UNet3DConditionModel and
CogVideoXTransformer3DModel."""

import json

import numpy as np
import pytest
import torch
from diffusers import CogVideoXTransformer3DModel, UNet3DConditionModel

from tests.pairs.test_export import voted_campaign  # noqa: F401 - fixture
from tests.train.test_dpo import config, exported  # noqa: F401 - fixture
from train.dpo import train_preferences
from model_families.embedded.family import EmbeddedFamily
from model_families.targets import training_scheduler
from model_families.embedded.video_adapter import VideoDenoiserAdapter, core_in_channels

LATENT, REFERENCE, MOTION, TOKENS = 192, 48, 8, 16


def tiny_core(family: str):
    channels = core_in_channels(LATENT, REFERENCE, MOTION)
    torch.manual_seed(0)
    if family == "unet3d":
        return UNet3DConditionModel(
            sample_size=8, in_channels=channels, out_channels=LATENT, block_out_channels=(16, 32), layers_per_block=1,
            down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
            up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
            cross_attention_dim=TOKENS, attention_head_dim=4, norm_num_groups=4)
    return CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=8, in_channels=channels, out_channels=LATENT, time_embed_dim=16,
        text_embed_dim=TOKENS, num_layers=1, sample_width=8, sample_height=8, sample_frames=13, patch_size=2,
        max_text_seq_length=64)


@pytest.mark.parametrize("family", ["unet3d", "cogvideox"])
def test_a_dpo_step_trains_the_wrapped_diffusers_model(family, exported, tmp_path):  # noqa: F811
    adapter = VideoDenoiserAdapter(family, dict(tiny_core(family).config), motion_channels=MOTION, token_dim=TOKENS,
                                   sample_size=32)
    model = tmp_path / "model"
    EmbeddedFamily(adapter, training_scheduler("v_prediction")).save(model, f"# tiny {family}\n")
    loaded = EmbeddedFamily.load(model)
    assert type(loaded.denoiser.core).__name__ == type(tiny_core(family)).__name__
    before = loaded.denoiser.state_dict()

    out = train_preferences(config(exported, model, tmp_path / "run", steps=2))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(r["errors/policy_chosen"] > 0 for r in rows)
    after = EmbeddedFamily.load(out).denoiser.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("core.") for k in changed)  # the diffusers model itself learned
    assert all(torch.equal(v, EmbeddedFamily.load(model).denoiser.state_dict()[k]) for k, v in before.items())
    clip = EmbeddedFamily.load(out).sample_motion(np.zeros((1, 32, 32, 3), np.uint8), np.zeros((1, 8, 131), np.float32),
                                             [0], steps=2)
    assert clip.shape == (1, 8, 32, 32, 3) and clip.dtype == np.uint8  # `pairs generate --model` samples from it


def test_core_channels_are_checked():
    core = tiny_core("cogvideox")
    with pytest.raises(ValueError, match="in/out channels"):
        VideoDenoiserAdapter("cogvideox", dict(core.config), motion_channels=MOTION + 1)
