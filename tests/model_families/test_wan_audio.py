"""The wan-audio family at tiny size: zero-init equivalence, per-latent-frame audio routing, folders, conversion."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import LoraConfig
from transformers import Wav2Vec2Config, Wav2Vec2Model

from data_schemas import UserError
from model_families.family import ConditionInputs, ModelFamily
from model_families.wan_audio import WanAudioFamily, convert_hallo4, init_model
from model_families.wan_audio.convert import translate_back
from model_families.wan_audio.frame_timing import group_by_latent_frame, video_span
from model_families.wan_audio.reference import REFERENCE_FRAMES, core_inputs
from model_families.wan_audio.sizes import SIZES, build_family
from model_families.wan_audio.transformer import WanAudioTransformer

FRAMES = 9  # 3 latent frames


@pytest.fixture(scope="module")
def family() -> WanAudioFamily:
    """A random tiny wan-audio model whose audio cross-attention is switched on (non-zero output)."""
    model = build_family("tiny", seed=1)
    torch.manual_seed(2)
    for attention in model.denoiser.audio_attn:
        torch.nn.init.normal_(attention.attn.to_out[0].weight, std=0.5)
    torch.nn.init.normal_(model.denoiser.pose_proj.net[-1].weight, std=0.5)
    return model


@pytest.fixture(scope="module")
def folder(family, tmp_path_factory) -> Path:
    """`family` saved as a model folder."""
    path = tmp_path_factory.mktemp("wan") / "model"
    family.save(path, "# tiny\n")
    return path


def condition_inputs(frames: int = FRAMES, pose: bool = True) -> ConditionInputs:
    """A random reference, a second of noise as audio and a slow head turn."""
    rng = np.random.default_rng(0)
    turn = np.stack([np.linspace(0, 0.3, frames), np.zeros(frames), np.zeros(frames)], 1).astype(np.float32)
    return ConditionInputs("c0", None, rng.integers(0, 256, (40, 48, 3), dtype=np.uint8),
                           (0.1 * rng.standard_normal(16000)).astype(np.float32), turn if pose else None, 25.0, frames)


def core_batch(model: WanAudioTransformer, batch: int = 2, latent: int = 3, seed: int = 0) -> dict:
    """Random core inputs for `latent` clip latent frames behind the reference frame, plus audio and pose."""
    g = torch.Generator().manual_seed(seed)
    config, frames = model.config, video_span(0, latent)[1]
    hidden, context = core_inputs(torch.randn(batch, latent, 16, 4, 4, generator=g),
                                  torch.randn(batch, 16, 4, 4, generator=g), torch.randn(latent, 16, 4, 4, generator=g))
    window = 2 * config.audio_window + 1
    return dict(hidden_states=hidden, timestep=torch.tensor([900.0, 35.0][:batch]),
                encoder_hidden_states=torch.zeros(batch, 1, config.transformer_config["text_dim"]),
                control_hidden_states=context,
                audio=torch.randn(batch, frames, window, config.audio_layers, config.audio_width, generator=g),
                pose=torch.randn(batch, frames, 3, generator=g))


def test_fresh_audio_and_pose_modules_leave_the_core_prediction_unchanged():
    model = build_family("tiny").denoiser.eval()
    inputs = core_batch(model)
    with torch.no_grad():
        wrapped = model(**inputs)
        bare = model.transformer(inputs["hidden_states"], inputs["timestep"], inputs["encoder_hidden_states"],
                                 control_hidden_states=inputs["control_hidden_states"]).sample
        silent = model(**dict(inputs, audio=torch.zeros_like(inputs["audio"]), pose=torch.zeros_like(inputs["pose"])))
    assert wrapped.shape == inputs["hidden_states"].shape
    assert torch.allclose(wrapped, bare, atol=1e-6)
    assert torch.allclose(silent, bare, atol=1e-6)


def injection_per_latent_frame(model: WanAudioTransformer, inputs: dict) -> torch.Tensor:
    """The first block's audio update, [B, core latent frames, tokens per frame, D]."""
    seen = []
    hook = model.audio_attn[0].register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        model(**inputs)
    hook.remove()
    return seen[0].unflatten(1, (inputs["hidden_states"].shape[2], -1))


@pytest.mark.parametrize("latent", [0, 1, 2])
def test_audio_of_a_latent_frames_video_frames_changes_only_that_frame(family, latent):
    model = family.denoiser.eval()
    inputs = core_batch(model)
    first, end = video_span(latent, 1)  # latent 0 ↔ frame 0 alone; latent k ↔ frames 4k-3 … 4k
    audio = inputs["audio"].clone()
    audio[:, first:end] += 3.0
    before = injection_per_latent_frame(model, inputs)
    after = injection_per_latent_frame(model, dict(inputs, audio=audio))
    changed = (after - before).abs().amax(dim=(0, 2, 3)) > 1e-5
    expected = torch.zeros_like(changed)
    expected[REFERENCE_FRAMES + latent] = True
    assert changed.tolist() == expected.tolist()


def test_rows_group_by_latent_frame_for_clips_and_later_windows():
    clip = torch.arange(9.0)[None, :, None]  # latent frame 0 holds frame 0 alone, repeated to 4 slots
    assert group_by_latent_frame(clip)[0, :, :, 0].tolist() == [[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]]
    window = torch.arange(1.0, 9.0)[None, :, None]  # latent frames 1-2: frames 1…8
    assert group_by_latent_frame(window)[0, :, :, 0].tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    with pytest.raises(ValueError, match="do not span whole latent frames"):
        group_by_latent_frame(torch.zeros(1, 7, 1))


def test_span_and_lengths_follow_the_causal_vae(family):
    assert [family.video_span(k, 1) for k in range(3)] == [(0, 1), (1, 5), (5, 9)]
    assert family.video_span(1, 2) == (1, 9)
    assert family.latent_frames(81) == 21 and family.usable_frames(84) == 81
    with pytest.raises(UserError, match=r"^a clip of 6 frames: the Wan VAE takes 4k\+1 frames; use 5 frames"):
        family.encode_video(np.zeros((6, 32, 32, 3), np.uint8))


def test_encodings_have_the_documented_shapes(family):
    frames = np.random.default_rng(1).integers(0, 256, (FRAMES, 48, 40, 3), dtype=np.uint8)
    latents = family.encode_video(frames)
    assert latents.shape == (3, 16, 4, 4) and latents.device.type == "cpu"
    assert torch.equal(latents, family.encode_video(frames))  # the posterior mean: deterministic
    assert family.decode_video(latents[None]).shape == (1, FRAMES, 32, 32, 3)
    condition = family.encode_condition(condition_inputs())
    assert {name: tuple(value.shape) for name, value in condition.items()} == {
        "reference": (16, 4, 4), "audio": (FRAMES, 5, 2, 32), "pose": (FRAMES, 3)}
    assert family.time_aligned == ("audio", "pose")
    # edge frames repeat: the window of frame 0 is frames (0, 0, 0, 1, 2)
    assert torch.equal(condition["audio"][0, 0], condition["audio"][0, 2])
    assert torch.equal(condition["audio"][0, 4], condition["audio"][2, 2])
    assert torch.equal(family.encode_condition(condition_inputs(pose=False))["pose"], torch.zeros(FRAMES, 3))
    assert isinstance(family, ModelFamily)


def test_save_and_load_round_trip_gives_the_same_predictions(family, folder):
    loaded = WanAudioFamily.load(folder)
    assert re.fullmatch(r"[0-9a-f]{12}", loaded.version) and loaded.version == WanAudioFamily.load(folder).version
    condition = {name: value[None].expand(2, *value.shape)
                 for name, value in family.encode_condition(condition_inputs()).items()}
    noisy = torch.randn(2, 3, 16, 4, 4, generator=torch.Generator().manual_seed(3))
    timestep = torch.tensor([700.0, 80.0])
    with torch.no_grad():
        expected = family.predict(family.denoiser, noisy, timestep, condition)
        assert torch.equal(loaded.predict(loaded.denoiser, noisy, timestep, condition), expected)
    assert expected.shape == noisy.shape


def test_blank_latents_come_from_longer_fixed_latents_without_the_vae(folder):
    direct = WanAudioFamily.load(folder)
    expected = direct.blank_latents(2)  # encoded by the VAE, loaded for it
    assert set(direct.encoders) == {"vae"}
    given = WanAudioFamily.load(folder)
    given.use_fixed_latents(WanAudioFamily.load(folder).fixed_latents(4))
    assert torch.equal(given.blank_latents(2), expected) and given.encoders == {}


def test_sample_makes_the_requested_frames_one_clip_per_seed(family):
    inputs = condition_inputs(frames=6)  # not 4k+1: 9 are made and cut
    clips = family.sample(inputs, seeds=[4, 5], steps=2, guidance=2.0)
    assert clips.shape == (2, 6, 32, 32, 3) and clips.dtype == np.uint8
    assert not np.array_equal(clips[0], clips[1])
    alone = family.sample(inputs, seeds=[5], steps=2, guidance=2.0)  # a clip depends on its seed, not its batch
    assert np.abs(alone[0].astype(int) - clips[1]).max() <= 1
    assert family.sample(inputs, seeds=[5], steps=1, guidance=1.0).shape == (1, 6, 32, 32, 3)


def test_gradient_checkpointing_keeps_the_output(family):
    model = build_family("tiny", seed=1).denoiser.train()
    inputs = core_batch(model, batch=1)
    plain = model(**inputs)
    model.enable_gradient_checkpointing()
    checkpointed = model(**inputs)
    checkpointed.square().mean().backward()
    assert torch.allclose(plain, checkpointed, atol=1e-6)
    assert model.audio_attn[0].attn.to_out[0].weight.grad is not None


def test_lora_adapts_the_attention_of_core_and_audio(family):
    model = build_family("tiny", seed=1).denoiser.eval()
    inputs = core_batch(model)
    with torch.no_grad():
        before = model(**inputs)
    model.add_adapter(LoraConfig(r=2, target_modules=list(family.lora_targets), init_lora_weights="gaussian"))
    adapted = {name.rsplit(".lora_A", 1)[0] for name, _ in model.named_parameters() if ".lora_A" in name}
    assert "audio_attn.0.attn.to_q" in adapted and "transformer.blocks.1.attn2.to_out.0" in adapted
    with torch.no_grad():
        assert torch.equal(model(**inputs), before)  # LoRA starts as the identity
        for name, parameter in model.named_parameters():
            if ".lora_B" in name:
                parameter.normal_()
        assert not torch.allclose(model(**inputs), before)


def test_1_3b_has_wan_1_3b_shapes():
    with torch.device("meta"):
        model = WanAudioTransformer(**SIZES["1.3b"].denoiser)
        wav2vec = Wav2Vec2Model(Wav2Vec2Config(**SIZES["1.3b"].audio_encoder))
    core = model.transformer
    base = sum(p.numel() for name, p in core.named_parameters() if not name.startswith("vace_"))
    assert 1.3e9 < base < 1.6e9  # Wan2.1-T2V-1.3B's blocks
    assert len(core.blocks) == 30 and len(core.vace_blocks) == 15 and core.config.in_channels == 16
    assert core.blocks[0].ffn.net[0].proj.weight.shape == (8960, 1536)
    assert model.audio_proj.proj1.in_features == 5 * 12 * 768 and wav2vec.config.hidden_size == 768
    assert 2.3e9 < sum(p.numel() for p in model.parameters()) < 2.6e9  # + VACE, audio attention, projectors


def hallo4_vae(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our AutoencoderKLWan weights under the original Wan2.1_VAE.pth names (the inverse of diffusers' map)."""
    residual = {"norm1.gamma": "residual.0.gamma", "conv1": "residual.2", "norm2.gamma": "residual.3.gamma",
                "conv2": "residual.6", "conv_shortcut": "shortcut"}
    rules = [
        (r"(encoder|decoder)\.conv_in\.(.*)", r"\1.conv1.\2"),
        (r"quant_conv\.(.*)", r"conv1.\1"), (r"post_quant_conv\.(.*)", r"conv2.\1"),
        (r"(encoder|decoder)\.norm_out\.(.*)", r"\1.head.0.\2"),
        (r"(encoder|decoder)\.conv_out\.(.*)", r"\1.head.2.\2"),
        (r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", r"\1.middle.1.\2"),
        (r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.*)", lambda m: f"{m[1]}.middle.{2 * int(m[2])}.{m[3]}"),
        (r"encoder\.down_blocks\.(.*)", r"encoder.downsamples.\1"),
        (r"decoder\.up_blocks\.(\d)\.resnets\.(\d)\.(.*)",
         lambda m: f"decoder.upsamples.{4 * int(m[1]) + int(m[2])}.{m[3]}"),
        (r"decoder\.up_blocks\.(\d)\.upsamplers\.0\.(.*)", lambda m: f"decoder.upsamples.{4 * int(m[1]) + 3}.{m[2]}"),
    ]
    original = {}
    for key, value in state_dict.items():
        for pattern, replacement in rules:
            if re.fullmatch(pattern, key):
                key = re.sub(pattern, replacement, key)
                break
        if ".middle.0." in key or ".middle.2." in key or "samples." in key:
            for ours, theirs in residual.items():
                key = re.sub(rf"\.{re.escape(ours)}(\.|$)", rf".{theirs}\1", key)
        original[key] = value
    return original


def hallo4_release(family: WanAudioFamily, root: Path) -> Path:
    """`family` written as Hallo4's release layout, with a skeleton pathway this family does not carry."""
    core = family.denoiser.transformer.config
    weights = {translate_back(key): value for key, value in family.denoiser.state_dict().items()
               if not key.startswith("pose_proj.")}
    dim = core.num_attention_heads * core.attention_head_dim
    weights.update({"pose_proj.proj.weight": torch.zeros(dim // 4, 16, 2, 2),
                    "pose_proj.proj.bias": torch.zeros(dim // 4),
                    "blocks.0.condition_cross_attn.q.weight": torch.zeros(dim, dim),
                    "blocks.1.condition_cross_norm.bias": torch.zeros(dim)})
    (root / "hallo4").mkdir(parents=True)
    torch.save(weights, root / "hallo4" / "model_weight.pth")
    (root / "Wan2.1_Encoders").mkdir()
    config = dict(_class_name="VaceWanModel", dim=dim, num_heads=core.num_attention_heads, num_layers=core.num_layers,
                  ffn_dim=core.ffn_dim, freq_dim=core.freq_dim, text_dim=core.text_dim, in_dim=16, out_dim=16,
                  vace_layers=list(core.vace_layers), vace_in_dim=core.vace_in_channels, eps=core.eps)
    (root / "Wan2.1_Encoders" / "config.json").write_text(json.dumps(config))
    torch.save(hallo4_vae(family.vae.state_dict()), root / "Wan2.1_Encoders" / "Wan2.1_VAE.pth")
    family.audio_encoder.save_pretrained(root / "wav2vec" / "wav2vec2-base-960h")
    return root


def test_hallo4_release_converts_to_a_folder_that_loads_strictly_and_predicts_the_same(family, tmp_path):
    release = hallo4_release(family, tmp_path / "release")
    report = convert_hallo4(release, tmp_path / "converted", frame_shape=family.frame_shape)
    assert report.fresh == ("pose projector",)
    assert report.dropped == ("skeleton projector", "skeleton cross-attention")
    converted = WanAudioFamily.load(tmp_path / "converted")  # strict: no missing or unexpected keys in any part
    assert "pose projector" in (tmp_path / "converted" / "model_card.md").read_text()
    for key, value in family.denoiser.state_dict().items():
        if not key.startswith("pose_proj."):
            assert torch.equal(converted.denoiser.state_dict()[key], value), key
    for key, value in family.vae.state_dict().items():
        assert torch.equal(converted.vae.state_dict()[key], value), key
    without_pose = copy.deepcopy(family.denoiser)  # the converted pose projector is fresh: it adds nothing
    torch.nn.init.zeros_(without_pose.pose_proj.net[-1].weight)
    condition = {name: value[None] for name, value in family.encode_condition(condition_inputs()).items()}
    noisy = torch.randn(1, 3, 16, 4, 4, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(converted.predict(converted.denoiser, noisy, torch.tensor([500.0]), condition),
                              family.predict(without_pose, noisy, torch.tensor([500.0]), condition), atol=1e-6)


def test_a_checkpoint_without_audio_converts_with_its_missing_parts_named(family, tmp_path):
    release = hallo4_release(family, tmp_path / "release")
    weights = torch.load(release / "hallo4" / "model_weight.pth")
    silent = {key: value for key, value in weights.items() if "audio" not in key}  # a plain Wan2.1-VACE checkpoint
    torch.save(silent, release / "hallo4" / "model_weight.pth")
    report = convert_hallo4(release, tmp_path / "converted", frame_shape=family.frame_shape)
    assert report.fresh == ("audio cross-attention", "audio projector", "pose projector")
    converted = WanAudioFamily.load(tmp_path / "converted")
    assert not converted.denoiser.audio_attn[0].attn.to_out[0].weight.any()  # fresh: zero output


def test_hallo4_keys_outside_the_map_are_one_user_error(family, tmp_path):
    release = hallo4_release(family, tmp_path / "release")
    weights = torch.load(release / "hallo4" / "model_weight.pth")
    weights["blocks.0.lora_up.weight"] = torch.zeros(1)
    torch.save(weights, release / "hallo4" / "model_weight.pth")
    with pytest.raises(UserError, match=r"model_weight\.pth: 1 keys that are not Hallo4's \(blocks\.0\.lora_up"):
        convert_hallo4(release, tmp_path / "converted")


def test_a_damaged_release_is_one_user_error_naming_the_file(family, tmp_path):
    release = hallo4_release(family, tmp_path / "release")
    vae = release / "Wan2.1_Encoders" / "Wan2.1_VAE.pth"
    vae.write_text("a page of HTML, not a checkpoint")
    with pytest.raises(UserError, match=r"Wan2\.1_VAE\.pth: not a readable checkpoint"):
        convert_hallo4(release, tmp_path / "converted")
    torch.save(hallo4_vae(family.vae.state_dict()), vae)
    shutil.rmtree(release / "wav2vec" / "wav2vec2-base-960h")
    (release / "wav2vec" / "wav2vec2-base-960h").mkdir()
    with pytest.raises(UserError, match="wav2vec2-base-960h: no config.json"):  # not looked up on the Hub
        convert_hallo4(release, tmp_path / "converted")


def break_other_family(path: Path) -> None:
    """Make the folder claim to be another family's."""
    (path / "family.json").write_text('{"family": "embedded"}')


def break_missing_vae(path: Path) -> None:
    """Remove the VAE part."""
    shutil.rmtree(path / "vae")


def break_wav2vec_width(path: Path) -> None:
    """Put a wav2vec2 of another width in audio_encoder/."""
    shutil.rmtree(path / "audio_encoder")
    config = Wav2Vec2Config(**dict(SIZES["tiny"].audio_encoder, hidden_size=48, num_attention_heads=2))
    Wav2Vec2Model(config).save_pretrained(path / "audio_encoder")


def break_transformer_weights(path: Path) -> None:
    """Drop the transformer's weights file."""
    (path / "transformer" / "diffusion_pytorch_model.safetensors").unlink()


@pytest.mark.parametrize("damage, message", [
    (break_other_family, r"family\.json: this is a 'embedded' model folder, not wan-audio"),
    (break_missing_vae, r"vae: missing \(no config\.json\); a wan-audio folder needs vae/"),
    (break_wav2vec_width, r"audio_encoder/config\.json: wav2vec2 hidden_size is 48, but the audio projector"),
    (break_transformer_weights, r"transformer: cannot load"),
])
def test_a_broken_folder_is_one_user_error_naming_the_file(folder, tmp_path, damage, message):
    broken = tmp_path / "model"
    shutil.copytree(folder, broken)
    damage(broken)
    with pytest.raises(UserError, match=message) as raised:
        WanAudioFamily.load(broken)
    assert "\n" not in str(raised.value)


def test_init_model_writes_a_loadable_folder(tmp_path):
    path = init_model("tiny", tmp_path / "fresh", seed=3)
    assert json.loads((path / "family.json").read_text()) == {"family": "wan-audio"}
    assert sorted(p.name for p in path.iterdir()) == [
        "audio_encoder", "family.json", "model_card.md", "scheduler", "transformer", "vae"]
    loaded = WanAudioFamily.load(path)
    assert loaded.scheduler.config.num_train_timesteps == 1000
    assert not any(p.requires_grad for p in loaded.vae.parameters())
