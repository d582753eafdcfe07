"""Hallo4's released weights → a wan-audio model folder.

Hallo4's release (huggingface fudan-generative-ai/hallo4, laid out as its README says):

    hallo4/model_weight.pth              VaceWanModel state dict, original Wan key names (+ audio, skeleton)
    Wan2.1_Encoders/config.json          VaceWanModel config (dim, num_heads, num_layers, vace_layers, ...)
    Wan2.1_Encoders/Wan2.1_VAE.pth       the Wan2.1 VAE, original layout
    wav2vec/wav2vec2-base-960h/          a Hugging Face wav2vec2 folder

KEY_MAP below is the whole key table, Hallo4 name → ours ({n} a block index, {p} weight or bias). The Wan
names follow diffusers' Wan converters (loaders/single_file_utils.py); the audio and skeleton names are Hallo4's
(vace/models/wan/modules/{wan_model,model,audio_proj,pose_proj}.py). Hallo4's skeleton pathway (its `pose_proj`
on VAE latents of rendered skeleton frames and each block's `condition_cross_attn`) has no input in this family,
whose pose is head angles: those keys are reported as not carried. Our own pose projector is never in Hallo4, so
it keeps its zero initialisation, which leaves Hallo4's predictions unchanged.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
from safetensors.torch import load_file
from transformers import Wav2Vec2Model

from data_schemas import UserError
from model_families.family import load_failure
from model_families.wan_audio.family import WanAudioFamily
from model_families.wan_audio.reference import context_channels
from model_families.wan_audio.sizes import LATENT_CHANNELS, training_scheduler
from model_families.wan_audio.transformer import WanAudioTransformer

WEIGHTS = ("hallo4/model_weight.pth", "hallo4/model_weight.ckpt", "hallo4/model_weight.safetensors")
CONFIG = "Wan2.1_Encoders/config.json"
VAE = "Wan2.1_Encoders/Wan2.1_VAE.pth"
WAV2VEC = ("wav2vec/wav2vec2-base-960h", "wav2vec2-base-960h")  # README layout, then the inference default
HALLO4_FRAMES = (480, 832)  # (height, width): Hallo4's default --size 480*832
HALLO4_AUDIO = dict(audio_window=2, audio_hidden=512, audio_tokens=32)  # AudioProjModel's defaults
POSE_HIDDEN = 256

PLACEHOLDERS = {"n": r"\d+", "p": "weight|bias", "rest": ".+"}


def _attention(theirs: str, ours: str) -> tuple[tuple[str, str], ...]:
    """One Wan attention layer: q/k/v/o and the q/k RMS norms → diffusers' to_q/to_k/to_v/to_out.0."""
    projections = (("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("o", "to_out.0"))
    return (*((f"{theirs}.{a}.{{p}}", f"{ours}.{b}.{{p}}") for a, b in projections),
            *((f"{theirs}.{norm}.weight", f"{ours}.{norm}.weight") for norm in ("norm_q", "norm_k")))


def _block(theirs: str, ours: str) -> tuple[tuple[str, str], ...]:
    """One Wan transformer block (a main block or a VACE block)."""
    return (*_attention(f"{theirs}.self_attn", f"{ours}.attn1"),
            *_attention(f"{theirs}.cross_attn", f"{ours}.attn2"),
            (f"{theirs}.norm3.{{p}}", f"{ours}.norm2.{{p}}"),  # Wan's cross-attention norm is diffusers' norm2
            (f"{theirs}.ffn.0.{{p}}", f"{ours}.ffn.net.0.proj.{{p}}"),
            (f"{theirs}.ffn.2.{{p}}", f"{ours}.ffn.net.2.{{p}}"),
            (f"{theirs}.modulation", f"{ours}.scale_shift_table"))


KEY_MAP: tuple[tuple[str, str], ...] = (
    ("patch_embedding.{p}", "transformer.patch_embedding.{p}"),
    ("text_embedding.0.{p}", "transformer.condition_embedder.text_embedder.linear_1.{p}"),
    ("text_embedding.2.{p}", "transformer.condition_embedder.text_embedder.linear_2.{p}"),
    ("time_embedding.0.{p}", "transformer.condition_embedder.time_embedder.linear_1.{p}"),
    ("time_embedding.2.{p}", "transformer.condition_embedder.time_embedder.linear_2.{p}"),
    ("time_projection.1.{p}", "transformer.condition_embedder.time_proj.{p}"),
    *_block("blocks.{n}", "transformer.blocks.{n}"),
    ("head.head.{p}", "transformer.proj_out.{p}"),
    ("head.modulation", "transformer.scale_shift_table"),
    ("vace_patch_embedding.{p}", "transformer.vace_patch_embedding.{p}"),
    *_block("vace_blocks.{n}", "transformer.vace_blocks.{n}"),
    ("vace_blocks.{n}.before_proj.{p}", "transformer.vace_blocks.{n}.proj_in.{p}"),
    ("vace_blocks.{n}.after_proj.{p}", "transformer.vace_blocks.{n}.proj_out.{p}"),
    *_attention("blocks.{n}.audio_cross_attn", "audio_attn.{n}.attn"),
    ("blocks.{n}.audio_cross_norm.{p}", "audio_attn.{n}.norm.{p}"),
    *((f"audio_proj.{layer}.{{p}}", f"audio_proj.{layer}.{{p}}") for layer in ("proj1", "proj2", "proj3", "norm")),
)

NOT_CARRIED: tuple[tuple[str, str], ...] = (  # Hallo4 part, its keys
    ("skeleton projector", "pose_proj.{rest}"),
    ("skeleton cross-attention", "blocks.{n}.condition_cross_attn.{rest}"),
    ("skeleton cross-attention", "blocks.{n}.condition_cross_norm.{rest}"),
)

OUR_PARTS: tuple[tuple[str, str], ...] = (  # our part, key prefix (first match wins)
    ("VACE blocks", "transformer.vace_"),
    ("Wan core", "transformer."),
    ("audio cross-attention", "audio_attn."),
    ("audio projector", "audio_proj."),
    ("pose projector", "pose_proj."),
)
REQUIRED_PARTS = ("Wan core",)


@functools.lru_cache(maxsize=None)
def _pattern(template: str) -> re.Pattern:
    """A key template ("blocks.{n}.ffn.0.{p}") as a regular expression with one named group per placeholder."""
    pieces = re.split(r"\{(\w+)\}", template)
    return re.compile("".join(re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>{PLACEHOLDERS[piece]})"
                              for i, piece in enumerate(pieces)))


def translate(key: str, rules: tuple[tuple[str, str], ...]) -> str | None:
    """`key` renamed by the first (source, target) template pair whose source matches it; None if none does."""
    for source, target in rules:
        match = _pattern(source).fullmatch(key)
        if match:
            return target.format(**match.groupdict())
    return None


def translate_back(key: str) -> str:
    """Hallo4's name for one of our keys (our own name if Hallo4 has none)."""
    return translate(key, tuple((ours, theirs) for theirs, ours in KEY_MAP)) or key


def part_of(key: str) -> str:
    """Which of our parts a key of WanAudioTransformer belongs to."""
    return next(part for part, prefix in OUR_PARTS if key.startswith(prefix))


@dataclass(frozen=True)
class ConversionReport:
    """What a conversion carried over: our parts Hallo4 lacked, and Hallo4's parts with no home here."""

    fresh: tuple[str, ...]  # ours, kept at their initialisation
    dropped: tuple[str, ...]  # Hallo4's, not carried

    def card(self, source: Path) -> str:
        """The model card of the converted folder."""
        return (f"# wan-audio converted from Hallo4\n\nSource: {source}\n\n"
                f"Parts not in the checkpoint, kept at their initialisation: {', '.join(self.fresh) or 'none'}\n\n"
                f"Hallo4 parts not carried (no input in this family): {', '.join(self.dropped) or 'none'}\n")


def _first_present(root: Path, names: tuple[str, ...], what: str) -> Path:
    """The first of `names` under `root` that exists; UserError naming where it was looked for."""
    for name in names:
        if (root / name).exists():
            return root / name
    raise UserError(f"{root / names[0]}: {what} not found; pass the folder Hallo4's README downloads "
                    "(huggingface-cli download fudan-generative-ai/hallo4)")


def _load_state_dict(file: Path) -> dict[str, torch.Tensor]:
    """A checkpoint file's tensors (.safetensors, or a torch pickle possibly wrapped in "state_dict")."""
    try:
        if file.suffix == ".safetensors":
            return load_file(file)
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a cut download or another file: torch's advice (load it unsafely) is not ours
        raise UserError(f"{file}: not a readable checkpoint; download Hallo4's release again") from None
    if not isinstance(checkpoint, dict):
        raise UserError(f"{file}: holds no tensors by name; download Hallo4's release again")
    return dict(checkpoint.get("state_dict", checkpoint))


def hallo4_state_dict(checkpoint: dict[str, torch.Tensor], source: Path
                      ) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Hallo4 keys → (our keys and tensors, Hallo4 parts not carried); UserError for keys of neither."""
    ours, dropped, unknown = {}, [], []
    for key, value in checkpoint.items():
        target = translate(key, KEY_MAP)
        if target is not None:
            ours[target] = value
        elif (part := next((part for part, keys in NOT_CARRIED if _pattern(keys).fullmatch(key)), None)):
            dropped.append(part)
        else:
            unknown.append(key)
    if unknown:
        raise UserError(f"{source}: {len(unknown)} keys that are not Hallo4's ({', '.join(unknown[:3])}); "
                        "pass Hallo4's model_weight.pth")
    return ours, tuple(dict.fromkeys(dropped))


def _core_config(config: dict, source: Path) -> dict:
    """Hallo4's VaceWanModel config (its defaults where the file is silent) → WanVACETransformer3DModel's."""
    absent = [key for key in ("dim", "num_heads", "num_layers", "ffn_dim") if key not in config]
    if absent:
        raise UserError(f"{source}: no {', '.join(absent)}; pass the VaceWanModel config.json of Hallo4's release")
    layers, heads, channels = config["num_layers"], config["num_heads"], config.get("in_dim", LATENT_CHANNELS)
    vace_in = config.get("vace_in_dim") or channels
    if vace_in != context_channels(channels):
        raise UserError(f"{source}: vace_in_dim {vace_in}, but this family's VACE context has "
                        f"{context_channels(channels)} channels (2 latents + 64 mask); pass Hallo4's config.json")
    return dict(patch_size=tuple(config.get("patch_size", (1, 2, 2))), num_attention_heads=heads,
                attention_head_dim=config["dim"] // heads, in_channels=channels,
                out_channels=config.get("out_dim", channels), text_dim=config.get("text_dim", 4096),
                freq_dim=config.get("freq_dim", 256), ffn_dim=config["ffn_dim"], num_layers=layers,
                cross_attn_norm=config.get("cross_attn_norm", True), qk_norm="rms_norm_across_heads",
                eps=config.get("eps", 1e-6), vace_layers=list(config.get("vace_layers") or range(0, layers, 2)),
                vace_in_channels=vace_in)


def _audio_config(weights: dict[str, torch.Tensor], wav2vec: Wav2Vec2Model, dim: int, source: Path) -> dict:
    """The audio projector's shape, read from its weights (Hallo4's defaults if it has none) and the wav2vec2."""
    layers, width = wav2vec.config.num_hidden_layers, wav2vec.config.hidden_size
    if "audio_proj.proj1.weight" not in weights:
        return dict(HALLO4_AUDIO, audio_layers=layers, audio_width=width)
    hidden, inputs = weights["audio_proj.proj1.weight"].shape
    window = inputs // (layers * width)
    if window * layers * width != inputs or window % 2 == 0:
        raise UserError(f"{source}: audio_proj.proj1 takes {inputs} inputs, not an odd window of {layers} layers × "
                        f"{width} (the wav2vec2 folder's); pass the wav2vec2 Hallo4 was trained with")
    return dict(audio_window=window // 2, audio_layers=layers, audio_width=width, audio_hidden=hidden,
                audio_tokens=weights["audio_proj.proj3.weight"].shape[0] // dim)


def _load_denoiser(model: WanAudioTransformer, weights: dict[str, torch.Tensor], source: Path) -> tuple[str, ...]:
    """Load the converted weights into `model`; returns our parts the checkpoint lacks entirely (kept fresh)."""
    expected = model.state_dict()
    for key, value in weights.items():
        if key not in expected or expected[key].shape != value.shape:
            shape = tuple(expected[key].shape) if key in expected else "no such key"
            raise UserError(f"{source}: {key} has shape {tuple(value.shape)}, the config gives {shape}; "
                            f"pass the config.json that came with these weights")
    missing = [key for key in expected if key not in weights]
    lacking = {part_of(key) for key in missing}
    fresh = tuple(part for part, _ in OUR_PARTS if part in lacking)
    for part in fresh:
        present = [key for key in weights if part_of(key) == part]
        if part in REQUIRED_PARTS or present:
            example = next(key for key in missing if part_of(key) == part)
            raise UserError(f"{source}: the {part} is incomplete (no {translate_back(example)}); "
                            "pass Hallo4's complete model_weight.pth")
    model.load_state_dict(weights, strict=False)
    return fresh


def _convert_vae(file: Path) -> AutoencoderKLWan:
    """Wan2.1_VAE.pth (original layout) → AutoencoderKLWan, every weight placed."""
    weights = convert_wan_vae_to_diffusers(_load_state_dict(file))
    if "encoder.conv_in.weight" not in weights:
        raise UserError(f"{file}: not a Wan2.1 VAE (no encoder.conv1); pass Wan2.1_VAE.pth")
    vae = AutoencoderKLWan(base_dim=weights["encoder.conv_in.weight"].shape[0], z_dim=LATENT_CHANNELS)
    try:
        vae.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise UserError(f"{file}: does not fit the Wan2.1 VAE ({str(error).splitlines()[1].strip()}); "
                        "pass Wan2.1_VAE.pth") from None
    return vae


def _load_wav2vec(folder: Path) -> Wav2Vec2Model:
    """The wav2vec2 encoder of a Hugging Face folder (a CTC head, if any, is left out)."""
    if not (folder / "config.json").is_file():  # else transformers takes the folder for a Hub id
        raise UserError(f"{folder}: no config.json; pass a complete wav2vec2 folder such as wav2vec2-base-960h")
    try:
        model, info = Wav2Vec2Model.from_pretrained(folder, output_loading_info=True)
    except (OSError, ValueError) as error:
        raise UserError(f"{folder}: cannot load wav2vec2 ({load_failure(error)[:200]}); pass a complete wav2vec2 "
                        "folder such as wav2vec2-base-960h") from None
    if info["missing_keys"]:
        raise UserError(f"{folder}: wav2vec2 weights missing ({', '.join(sorted(info['missing_keys'])[:3])}); "
                        "pass a complete wav2vec2 folder such as wav2vec2-base-960h")
    return model


def convert_hallo4(weights_dir: Path, out_dir: Path, frame_shape: tuple[int, int] = HALLO4_FRAMES,
                   seed: int = 0) -> ConversionReport:
    """Write a wan-audio folder at `out_dir` from Hallo4's release in `weights_dir`; returns what was carried."""
    weights_dir = Path(weights_dir)
    weights_file = _first_present(weights_dir, WEIGHTS, "Hallo4's model weights")
    config_file = _first_present(weights_dir, (CONFIG,), "the VaceWanModel config")
    wav2vec = _load_wav2vec(_first_present(weights_dir, WAV2VEC, "the wav2vec2 folder"))
    vae = _convert_vae(_first_present(weights_dir, (VAE,), "the Wan2.1 VAE"))

    weights, dropped = hallo4_state_dict(_load_state_dict(weights_file), weights_file)
    core = _core_config(json.loads(config_file.read_text(encoding="utf-8")), config_file)
    dim = core["num_attention_heads"] * core["attention_head_dim"]
    torch.manual_seed(seed)
    denoiser = WanAudioTransformer(transformer_config=core, pose_hidden=POSE_HIDDEN, frame_height=frame_shape[0],
                                   frame_width=frame_shape[1], **_audio_config(weights, wav2vec, dim, weights_file))
    report = ConversionReport(fresh=_load_denoiser(denoiser, weights, weights_file), dropped=dropped)
    family = WanAudioFamily(denoiser, training_scheduler(), {"vae": vae, "audio_encoder": wav2vec})
    family.save(Path(out_dir), report.card(weights_dir))
    return report
