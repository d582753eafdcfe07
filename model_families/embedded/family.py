"""The embedded family: a model folder (denoiser + scheduler + model card) and its sampler.

Folder layout, the same shape as a diffusers pipeline:

    family.json     {"family": "embedded"}
    denoiser/       PortraitDenoiser (or VideoDenoiserAdapter around a diffusers video model).save_pretrained
    scheduler/      the training scheduler's config (it fixes the target type)
    model_card.md   how it was made
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from data_schemas import UserError
from media_io.hashing import sha256_file
from media_io.codecs import resize_square
from model_families.embedded.motion_features import motion_features
from model_families.embedded.latents import frames_to_tensor, patchify, tensor_to_frames, unpatchify
from model_families.embedded.denoiser import PortraitDenoiser
from model_families.family import ConditionInputs, Conditioning, load_failure, write_family_json
from model_families.targets import prediction_type_of, sampling_scheduler
from model_families.embedded.video_adapter import VideoDenoiserAdapter

WEIGHTS = "diffusion_pytorch_model.safetensors"  # what diffusers' save_pretrained names the weights


@dataclass
class EmbeddedFamily:
    """A denoiser with its training scheduler; samples clips from reference frames and motion features."""

    name: ClassVar[str] = "embedded"
    time_aligned: ClassVar[tuple[str, ...]] = ("motion",)
    # LoRA on the attention projections and the residual blocks' convolutions.
    lora_targets: ClassVar[tuple[str, ...]] = ("to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2")

    denoiser: PortraitDenoiser | VideoDenoiserAdapter
    scheduler: SchedulerMixin
    version: str = "unsaved"  # first 12 hex of the weights' sha256 once loaded from a folder

    @property
    def size(self) -> int:
        """Frame size in pixels the model was trained at (from its config)."""
        return int(self.denoiser.config.sample_size)

    def fixed_latents(self, frames: int) -> dict[str, torch.Tensor]:
        """Nothing: every input of `predict` comes from the clip or its condition."""
        return {}

    def use_fixed_latents(self, tensors: dict[str, torch.Tensor]) -> None:
        """Nothing to take (`fixed_latents` makes none)."""

    def save(self, path: Path, card: str) -> None:
        """Write the model folder."""
        path = Path(path)
        write_family_json(path, self.name)
        self.denoiser.save_pretrained(path / "denoiser")
        self.scheduler.save_pretrained(path / "scheduler")
        (path / "model_card.md").write_text(card, encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str, device: str = "cpu") -> "EmbeddedFamily":
        """Load an embedded model folder (`model_families.registry.load_model` checked its family.json)."""
        path = Path(path)
        # Every file checked here first: diffusers takes a missing folder for a Hub id and goes online.
        for needed in ("denoiser/config.json", f"denoiser/{WEIGHTS}", "scheduler/scheduler_config.json"):
            if not (path / needed).is_file():
                raise UserError(f"{path}: embedded model folder without {needed}; pass a folder written by "
                                "`train pretrain` or `train dpo`, or `embedded`")
        try:
            kind = json.loads((path / "denoiser" / "config.json").read_text())["_class_name"]
            denoiser_cls = VideoDenoiserAdapter if kind == VideoDenoiserAdapter.__name__ else PortraitDenoiser
            denoiser = denoiser_cls.from_pretrained(path / "denoiser", torch_dtype=torch.float32)
            config = DDPMScheduler.load_config(path / "scheduler")
            flow = config["_class_name"] == "FlowMatchEulerDiscreteScheduler"
            scheduler = (FlowMatchEulerDiscreteScheduler if flow else DDPMScheduler).from_config(config)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
            raise UserError(f"{path}: cannot load this embedded model ({load_failure(error)[:200]}); re-save it with "
                            "`train pretrain` or `train dpo`") from None
        prediction_type_of(scheduler)  # an unknown target is refused here, not trained as another one
        return cls(denoiser.to(device).eval(), scheduler, sha256_file(path / "denoiser" / WEIGHTS)[:12])

    @property
    def frame_shape(self) -> tuple[int, int]:
        """Square frames of the model's size."""
        return self.size, self.size

    @property
    def rho(self) -> int:
        """Video frames per latent frame."""
        return int(self.denoiser.config.rho)

    def usable_frames(self, frames: int) -> int:
        """Whole latent frames only."""
        return frames // self.rho * self.rho

    def latent_frames(self, frames: int) -> int:
        """ρ video frames per latent frame."""
        if frames % self.rho or frames <= 0:
            raise UserError(f"{frames} frames: the embedded model takes multiples of {self.rho} frames; "
                            f"use {max(self.rho, self.usable_frames(frames))}")
        return frames // self.rho

    def video_span(self, start: int, length: int) -> tuple[int, int]:
        """Latent frame k holds video frames kρ … kρ+ρ−1."""
        return start * self.rho, (start + length) * self.rho

    def encode_video(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [F, H, W, 3] → [F/ρ, C, h, w] (frames resized to the model's size; F a multiple of ρ)."""
        return self.encode(resize_square(frames, self.size)[None])[0]

    def decode_video(self, latents: torch.Tensor) -> np.ndarray:
        """[B, T, C, h, w] → uint8 [B, Tρ, S, S, 3]."""
        return self.decode(latents)

    def encode_condition(self, inputs: ConditionInputs) -> Conditioning:
        """The reference latent and the motion features of every video frame (whole latent frames)."""
        padded = -(-inputs.frames // self.rho) * self.rho
        reference = self.reference_latent(resize_square(inputs.reference, self.size)[None])[0]
        motion = motion_features(inputs.audio, inputs.pose, inputs.fps, padded)
        return {"reference": reference, "motion": torch.from_numpy(motion)}

    def predict(self, denoiser: torch.nn.Module, noisy: torch.Tensor, timestep: torch.Tensor,
                conditioning: Conditioning) -> torch.Tensor:
        """The denoiser's call on the embedded layout."""
        return denoiser(noisy, timestep, conditioning["reference"], conditioning["motion"])

    def reference_latent(self, reference: np.ndarray) -> torch.Tensor:
        """uint8 [B, H, W, 3] reference images → [B, 3·p², h, w]."""
        patch = self.denoiser.config.patch
        return patchify(frames_to_tensor(reference[:, None]), 1, patch)[:, 0]

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [B, F, H, W, 3] → latents [B, F/ρ, C, h, w]."""
        return patchify(frames_to_tensor(frames), self.denoiser.config.rho, self.denoiser.config.patch)

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Latents → uint8 frames [B, F, H, W, 3]."""
        return tensor_to_frames(unpatchify(latents.float(), self.denoiser.config.rho, self.denoiser.config.patch))

    def sample(self, inputs: ConditionInputs, seeds: list[int], steps: int = 20, guidance: float = 2.0) -> np.ndarray:
        """uint8 [len(seeds), inputs.frames, S, S, 3] at the model's size S, all seeds in one batch."""
        padded = -(-inputs.frames // self.rho) * self.rho  # the model makes whole latent frames; the extra is cut
        motion = motion_features(inputs.audio, inputs.pose, inputs.fps, padded)
        reference = resize_square(inputs.reference, self.size)
        clips = self.sample_motion(np.repeat(reference[None], len(seeds), 0), np.repeat(motion[None], len(seeds), 0),
                                   seeds, steps=steps, guidance=guidance)
        return clips[:, : inputs.frames]

    @torch.no_grad()
    def sample_motion(
        self, reference: np.ndarray, motion: np.ndarray, seeds: list[int], steps: int = 25, guidance: float = 2.0
    ) -> np.ndarray:
        """Clips uint8 [B, F, H, W, 3] for reference [B, H, W, 3], motion [B, F, D] and one seed per clip.

        F must be a multiple of ρ. Classifier-free guidance mixes predictions with and without motion.
        """
        device = self.denoiser.device
        rho, patch = self.denoiser.config.rho, self.denoiser.config.patch
        b, f, _ = motion.shape
        h = reference.shape[1] // patch
        shape = (f // rho, self.denoiser.config.latent_channels, h, reference.shape[2] // patch)
        x = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
        x = x.to(device)
        ref = self.reference_latent(reference).to(device)
        cond = torch.from_numpy(np.ascontiguousarray(motion)).float().to(device)
        sampler = sampling_scheduler(self.scheduler)
        sampler.set_timesteps(steps, device=device)
        if hasattr(sampler, "init_noise_sigma"):
            x = x * sampler.init_noise_sigma
        for t in sampler.timesteps:
            timestep = t.expand(b)
            if guidance == 1.0:
                pred = self.denoiser(x, timestep, ref, cond)
            else:
                both = self.denoiser(torch.cat([x, x]), torch.cat([timestep, timestep]), torch.cat([ref, ref]),
                                     torch.cat([cond, torch.zeros_like(cond)]))
                with_motion, without = both.chunk(2)
                pred = without + guidance * (with_motion - without)
            x = sampler.step(pred, t, x).prev_sample
        return self.decode(x.cpu())
