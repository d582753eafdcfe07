"""The embedded model as a folder (denoiser + scheduler + model card) and its sampler.

Folder layout, the same shape as a diffusers pipeline:

    denoiser/       PortraitDenoiser (or VideoDenoiserAdapter around a diffusers video model).save_pretrained
    scheduler/      the training scheduler's config (it fixes the target type)
    model_card.md   how it was made
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from annotate.store import sha256_file
from data_schemas import UserError
from train.latents import frames_to_tensor, patchify, tensor_to_frames, unpatchify
from train.model import PortraitDenoiser
from train.targets import sampling_scheduler
from train.video_adapter import VideoDenoiserAdapter

SHIPPED = Path(__file__).parent / "checkpoints" / "embedded"


@dataclass
class EmbeddedPipeline:
    """A denoiser with its training scheduler; samples clips from reference frames and motion features."""

    denoiser: PortraitDenoiser | VideoDenoiserAdapter
    scheduler: SchedulerMixin
    version: str = "unsaved"  # first 12 hex of the weights' sha256 once loaded from a folder

    @property
    def size(self) -> int:
        """Frame size in pixels the model was trained at (from its config)."""
        return int(self.denoiser.config.sample_size)

    def save(self, path: Path, card: str) -> None:
        """Write the model folder."""
        path = Path(path)
        self.denoiser.save_pretrained(path / "denoiser")
        self.scheduler.save_pretrained(path / "scheduler")
        (path / "model_card.md").write_text(card, encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str, device: str = "cpu") -> "EmbeddedPipeline":
        """Load a model folder; `embedded` means the checkpoint shipped with portrait-dpo."""
        path = SHIPPED if str(path) == "embedded" else Path(path)
        if not (path / "denoiser" / "config.json").is_file():
            raise UserError(f"{path}: not an embedded model folder (no denoiser/config.json); "
                            "pass a folder written by `train pretrain`, or `embedded`")
        kind = json.loads((path / "denoiser" / "config.json").read_text())["_class_name"]
        denoiser_cls = VideoDenoiserAdapter if kind == VideoDenoiserAdapter.__name__ else PortraitDenoiser
        denoiser = denoiser_cls.from_pretrained(path / "denoiser", torch_dtype=torch.float32).to(device).eval()
        config = DDPMScheduler.load_config(path / "scheduler")
        scheduler_cls = FlowMatchEulerDiscreteScheduler if config["_class_name"] == "FlowMatchEulerDiscreteScheduler" \
            else DDPMScheduler
        weights = sha256_file(path / "denoiser" / "diffusion_pytorch_model.safetensors")
        return cls(denoiser, scheduler_cls.from_config(config), weights[:12])

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

    @torch.no_grad()
    def sample(
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
