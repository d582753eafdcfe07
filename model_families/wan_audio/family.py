"""The wan-audio family (Hallo4-class): a model folder and the ModelFamily interface over it.

Folder layout:

    family.json     {"family": "wan-audio"}
    transformer/    WanAudioTransformer.save_pretrained (the denoiser; its config holds the frame size)
    vae/            AutoencoderKLWan.save_pretrained
    audio_encoder/  Wav2Vec2Model.save_pretrained
    scheduler/      FlowMatchEulerDiscreteScheduler (flow-matching velocity target)
    model_card.md   how it was made

There is no text encoder: the text condition is a null embedding (see `null_text`), so no T5 is needed and
`ConditionInputs.text` is not used. Latents and conditioning come back on the CPU, float32, for caching;
`predict` moves them to the noisy latents' device.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, TypeVar

import numpy as np
import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
from transformers import Wav2Vec2Model

from data_schemas import UserError
from model_families.family import ConditionInputs, Conditioning, load_failure, write_family_json
from model_families.wan_audio import frame_timing, video_codec
from model_families.wan_audio.audio_features import audio_features
from model_families.wan_audio.reference import clip_output, core_inputs
from model_families.wan_audio.transformer import WanAudioTransformer

FAMILY = "wan-audio"
PARTS = {  # subfolder → the file that marks it, and what writes it
    "transformer": ("config.json", "WanAudioTransformer.save_pretrained"),
    "vae": ("config.json", "AutoencoderKLWan.save_pretrained"),
    "audio_encoder": ("config.json", "Wav2Vec2Model.save_pretrained"),
    "scheduler": ("scheduler_config.json", "FlowMatchEulerDiscreteScheduler.save_pretrained"),
}
WEIGHT_PARTS = ("transformer", "vae", "audio_encoder")
REMAKE = "re-create the folder with model_families.wan_audio.init_model or convert_hallo4"
NULL_TEXT_TOKENS = 1  # all-zero tokens attend uniformly, so their count does not change the output

Part = TypeVar("Part")


def null_text(batch: int, text_dim: int, like: torch.Tensor) -> torch.Tensor:
    """The text condition when there is no prompt: zeros [batch, NULL_TEXT_TOKENS, text_dim] (Wan's padding)."""
    return like.new_zeros(batch, NULL_TEXT_TOKENS, text_dim)


def pose_rows(pose: np.ndarray | None, frames: int) -> torch.Tensor:
    """Yaw/pitch/roll [n, 3] (or None: facing the camera) → float32 [frames, 3]; a short track holds its last row."""
    if pose is None or len(pose) == 0:
        return torch.zeros(frames, 3)
    rows = torch.as_tensor(np.asarray(pose, np.float32)[:frames])
    return torch.cat([rows, rows[-1:].expand(frames - len(rows), 3)])


def weights_version(path: Path) -> str:
    """First 12 hex of a sha256 over the folder's weight files (names and bytes, in a fixed order)."""
    digest = hashlib.sha256()
    for part in WEIGHT_PARTS:
        for file in sorted((path / part).glob("*.safetensors")):
            digest.update(f"{part}/{file.name}".encode())
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 24), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:12]


def _read_config(path: Path, part: str) -> dict:
    """A part's config as a dict; UserError naming the file if it is not JSON."""
    file = path / part / PARTS[part][0]
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except ValueError:
        raise UserError(f"{file}: not a JSON config; {REMAKE}") from None


def _check_folder(path: Path) -> None:
    """One UserError naming the file and the fix for a folder that is not a complete wan-audio folder."""
    marker = path / "family.json"
    try:
        name = json.loads(marker.read_text(encoding="utf-8"))["family"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{marker}: missing or not {{\"family\": \"{FAMILY}\"}}; pass a wan-audio model folder "
                        f"or {REMAKE}") from None
    if name != FAMILY:
        raise UserError(f"{marker}: this is a {name!r} model folder, not {FAMILY}; load it with "
                        "model_families.registry.load_model, or pass a wan-audio folder")
    for part, (marker_file, writer) in PARTS.items():
        if not (path / part / marker_file).is_file():
            raise UserError(f"{path / part}: missing (no {marker_file}); a wan-audio folder needs {part}/ "
                            f"written by {writer}; {REMAKE}")
    denoiser = _read_config(path, "transformer")
    if denoiser.get("_class_name") != WanAudioTransformer.__name__:
        raise UserError(f"{path / 'transformer' / 'config.json'}: a {denoiser.get('_class_name')}, not a "
                        f"{WanAudioTransformer.__name__}; {REMAKE}")
    wav2vec = _read_config(path, "audio_encoder")
    vae = _read_config(path, "vae")
    expected = {"hidden_size": denoiser["audio_width"], "num_hidden_layers": denoiser["audio_layers"]}
    for key, value in expected.items():
        if wav2vec.get(key) != value:
            raise UserError(f"{path / 'audio_encoder' / 'config.json'}: wav2vec2 {key} is {wav2vec.get(key)}, but the "
                            f"audio projector in transformer/ takes {value}; put the wav2vec2 the model was trained "
                            "with in audio_encoder/")
    channels = denoiser["transformer_config"]["in_channels"]
    if vae.get("z_dim") != channels:
        raise UserError(f"{path / 'vae' / 'config.json'}: VAE z_dim is {vae.get('z_dim')}, but the transformer takes "
                        f"{channels} latent channels; put the model's own Wan VAE in vae/")


def _load_part(folder: Path, load: Callable[..., tuple[Part, dict]]) -> Part:
    """Load one part strictly (every weight present, none left over); UserError naming the folder otherwise."""
    try:
        part, info = load(folder, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise UserError(f"{folder}: cannot load ({load_failure(error)}); {REMAKE}") from None
    problems = {kind: info.get(kind) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {kind: keys for kind, keys in problems.items() if keys}
    if problems:
        kind, keys = next(iter(problems.items()))
        raise UserError(f"{folder}: weights do not match its config ({kind}: {', '.join(map(str, list(keys)[:3]))}); "
                        f"{REMAKE}")
    return part


ENCODERS = {"vae": AutoencoderKLWan, "audio_encoder": Wav2Vec2Model}


@dataclass
class WanAudioFamily:
    """A loaded wan-audio folder: the denoiser, its frozen VAE and wav2vec2, and its training scheduler.

    A family loaded from a folder reads its encoders' weights when they are first used: training from a latent
    cache that holds the blank latents (`use_fixed_latents`) never loads them, which spares their weights (about
    0.9 GB in fp32 at 1.3b) and the VAE's activations on the grey clip.
    """

    name: ClassVar[str] = FAMILY
    time_aligned: ClassVar[tuple[str, ...]] = ("audio", "pose")
    # Every attention projection: the core's self- and text attention, the VACE blocks' and the audio attention.
    lora_targets: ClassVar[tuple[str, ...]] = ("to_q", "to_k", "to_v", "to_out.0")

    denoiser: WanAudioTransformer
    scheduler: FlowMatchEulerDiscreteScheduler
    encoders: dict[str, torch.nn.Module] = field(default_factory=dict)  # "vae", "audio_encoder": those loaded
    folder: Path | None = None  # where encoders not yet loaded come from
    device: str = "cpu"  # where they go
    version: str = "unsaved"  # first 12 hex of the weights' sha256 once loaded from a folder
    _blank: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)  # blank latents per clip length

    def __post_init__(self) -> None:
        for encoder in self.encoders.values():
            _freeze(encoder)

    @property
    def vae(self) -> AutoencoderKLWan:
        return self._encoder("vae")

    @property
    def audio_encoder(self) -> Wav2Vec2Model:
        return self._encoder("audio_encoder")

    def _encoder(self, part: str) -> torch.nn.Module:
        if part not in self.encoders:
            loaded = _load_part(self.folder / part, ENCODERS[part].from_pretrained)
            self.encoders[part] = _freeze(loaded.to(self.device))
        return self.encoders[part]

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(height, width) in pixels of the frames the model makes."""
        return self.denoiser.config.frame_height, self.denoiser.config.frame_width

    def usable_frames(self, frames: int) -> int:
        """The longest clip length ≤ `frames` the VAE takes (4k+1)."""
        return frame_timing.usable_length(frames)

    def latent_frames(self, frames: int) -> int:
        """Latent frames of a clip of `frames` video frames; UserError unless frames is 4k+1."""
        return frame_timing.latent_frames(frames)

    def video_span(self, start: int, length: int) -> tuple[int, int]:
        """Video frames [first, end) covered by latent frames [start, start + length)."""
        return frame_timing.video_span(start, length)

    def encode_video(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [F, H, W, 3] → latents [T, C, h, w] at the model's frame size (CPU, float32)."""
        self.latent_frames(len(frames))
        return video_codec.encode(self.vae, video_codec.fit_frames(frames, *self.frame_shape)[None])[0].float().cpu()

    def decode_video(self, latents: torch.Tensor) -> np.ndarray:
        """Latents [B, T, C, h, w] → uint8 [B, F, H, W, 3]."""
        return video_codec.decode(self.vae, latents)

    def encode_condition(self, inputs: ConditionInputs) -> Conditioning:
        """Reference latent [C, h, w], audio features [F, window, layers, width] and pose [F, 3] (CPU, float32)."""
        reference = video_codec.fit_frames(inputs.reference[None], *self.frame_shape)[None]
        radius = self.denoiser.config.audio_window
        return {
            "reference": video_codec.encode(self.vae, reference)[0, 0].float().cpu(),
            "audio": audio_features(self.audio_encoder, inputs.audio, inputs.frames, inputs.fps, radius),
            "pose": pose_rows(inputs.pose, inputs.frames),
        }

    def blank_latents(self, frames: int) -> torch.Tensor:
        """Latents [T, C, h, w] of an all-grey clip of `frames` latent frames (the VACE context's source)."""
        longer = [length for length in self._blank if length >= frames]
        if longer:  # the VAE is causal: a clip's first latent frames do not depend on the frames after them
            return self._blank[min(longer)][:frames]
        grey = torch.zeros(1, 3, frame_timing.video_span(0, frames)[1], *self.frame_shape)
        self._blank[frames] = video_codec.encode(self.vae, grey)[0].float().cpu()
        return self._blank[frames]

    def fixed_latents(self, frames: int) -> dict[str, torch.Tensor]:
        """{"blank": the blank latents of `frames` latent frames}: what `predict` encodes from no clip."""
        return {"blank": self.blank_latents(frames)}

    def use_fixed_latents(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take blank latents `fixed_latents` made (from a latent cache), so `predict` need not run the VAE."""
        blank = tensors["blank"]
        self._blank[len(blank)] = blank

    def predict(self, denoiser: torch.nn.Module, noisy: torch.Tensor, timestep: torch.Tensor,
                conditioning: Conditioning) -> torch.Tensor:
        """The velocity (noise − x0) for noisy latents [B, T, C, h, w], timesteps [B] (σ·1000) and conditioning."""
        latents, context = core_inputs(noisy, conditioning["reference"], self.blank_latents(noisy.shape[1]))
        text = null_text(len(noisy), self.denoiser.config.transformer_config["text_dim"], noisy)
        out = denoiser(latents, timestep.to(noisy.device), text, context, conditioning["audio"].to(noisy),
                       conditioning["pose"].to(noisy))
        return clip_output(out)

    @torch.no_grad()
    def sample(self, inputs: ConditionInputs, seeds: list[int], steps: int = 25, guidance: float = 6.0) -> np.ndarray:
        """uint8 [len(seeds), inputs.frames, H, W, 3]; guidance mixes predictions with and without audio and pose."""
        frames = frame_timing.valid_length(inputs.frames)  # the VAE makes 4k+1 frames; the extra is cut
        condition = self.encode_condition(dataclasses.replace(inputs, frames=frames))
        batch = {name: value[None].expand(len(seeds), *value.shape) for name, value in condition.items()}
        if guidance != 1.0:
            without = dict(batch, audio=torch.zeros_like(batch["audio"]), pose=torch.zeros_like(batch["pose"]))
            batch = {name: torch.cat([batch[name], without[name]]) for name in batch}
        device = self.denoiser.device
        stride = self.vae.spatial_compression_ratio
        shape = (self.latent_frames(frames), self.vae.config.z_dim, *(side // stride for side in self.frame_shape))
        x = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(seed))) for seed in seeds])
        x = x.to(device)
        sampler = FlowMatchEulerDiscreteScheduler.from_config(self.scheduler.config)
        sampler.set_timesteps(steps, device=device)
        for t in sampler.timesteps:
            if guidance == 1.0:
                velocity = self.predict(self.denoiser, x, t.expand(len(x)), batch)
            else:
                with_condition, without_condition = self.predict(
                    self.denoiser, torch.cat([x, x]), t.expand(2 * len(x)), batch).chunk(2)
                velocity = without_condition + guidance * (with_condition - without_condition)
            x = sampler.step(velocity, t, x).prev_sample
        return self.decode_video(x)[:, : inputs.frames]

    def save(self, path: Path, card: str) -> None:
        """Write the model folder (family.json, one subfolder per part, model_card.md); an encoder never loaded is
        copied from the folder it would have come from."""
        path = Path(path)
        write_family_json(path, FAMILY)
        self.denoiser.save_pretrained(path / "transformer")
        for part in ENCODERS:
            if part in self.encoders:
                self.encoders[part].save_pretrained(path / part)
            elif (self.folder / part).resolve() != (path / part).resolve():
                shutil.copytree(self.folder / part, path / part, dirs_exist_ok=True)
        self.scheduler.save_pretrained(path / "scheduler")
        (path / "model_card.md").write_text(card, encoding="utf-8")

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> "WanAudioFamily":
        """Load a wan-audio folder (its encoders when first used); a missing or mismatched part is one UserError
        naming its file and the fix."""
        path = Path(path)
        _check_folder(path)
        denoiser = _load_part(path / "transformer", WanAudioTransformer.from_pretrained)
        return cls(denoiser.to(device).eval(), FlowMatchEulerDiscreteScheduler.from_pretrained(path / "scheduler"),
                   folder=path, device=device, version=weights_version(path))


def _freeze(encoder: torch.nn.Module) -> torch.nn.Module:
    """Eval mode (no dropout or layer drop in wav2vec2) and no gradients."""
    return encoder.eval().requires_grad_(False)
