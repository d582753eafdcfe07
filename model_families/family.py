"""The one interface every stage uses to talk to a video diffusion model: a model family.

A *model folder* holds `family.json` (`{"family": NAME}`), one `save_pretrained` subfolder per part
(e.g. `denoiser/` or `transformer/`, `vae/`, `audio_encoder/`, `scheduler/`) and `model_card.md`.
`model_families.registry.load_model(path)` reads `family.json` and hands the folder to that family.

Shapes: a clip's latents are time-first, `[T, ...]` (batched `[B, T, ...]`); the family converts to its
core's layout inside `predict`. A condition encodes to a `Conditioning`: named tensors, unbatched; those
named in `time_aligned` have one row per *video frame* on dim 0 and are sliced with `video_span` when the
trainer crops a window of latent frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from data_schemas.constants import FPS, SAMPLE_RATE

Conditioning = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ConditionInputs:
    """What a model gets for one condition (also the argument of a `pairs generate --pipeline` callable)."""

    condition_id: str
    text: str | None
    reference: np.ndarray  # uint8 [H, W, 3]
    audio: np.ndarray  # float32 mono at data_schemas.SAMPLE_RATE
    pose: np.ndarray | None  # float32 [frames, 3] yaw/pitch/roll in radians, or None
    fps: float
    frames: int  # how many video frames the clip must have

    @classmethod
    def at_world_fps(cls, condition_id: str, text: str | None, reference: np.ndarray, audio: np.ndarray,
                     pose: np.ndarray | None) -> "ConditionInputs":
        """Inputs for a clip at the shared frame rate, as long as the audio."""
        return cls(condition_id, text, reference, audio, pose, FPS, int(len(audio) / SAMPLE_RATE * FPS))


@runtime_checkable
class ModelFamily(Protocol):
    """A loaded model folder: the trainable denoiser, its frozen encoders and its training scheduler."""

    name: ClassVar[str]  # the value of family.json's "family"
    denoiser: torch.nn.Module  # the part DPO and SFT train (LoRA goes here); encoders stay frozen
    scheduler: SchedulerMixin  # training scheduler: fixes the target (epsilon, v_prediction or flow)
    version: str  # short content hash of the weights, recorded with every clip and run
    time_aligned: tuple[str, ...]  # conditioning names with one row per video frame
    lora_targets: tuple[str, ...]  # module names of the denoiser that LoRA adapts

    @property
    def frame_shape(self) -> tuple[int, int]:
        """(height, width) in pixels of the clips the model makes and encodes."""

    def usable_frames(self, frames: int) -> int:
        """The longest clip length ≤ `frames` the model takes (a clip is cut to it before encoding)."""

    def latent_frames(self, frames: int) -> int:
        """Latent frames of a clip of `frames` video frames; raises UserError for a length it cannot take."""

    def video_span(self, start: int, length: int) -> tuple[int, int]:
        """Video frames [first, end) covered by latent frames [start, start + length)."""

    def encode_video(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [F, H, W, 3] → latents [T, ...] (frames resized to the model's size first)."""

    def decode_video(self, latents: torch.Tensor) -> np.ndarray:
        """Latents [B, T, ...] → uint8 [B, F, H, W, 3]."""

    def encode_condition(self, inputs: ConditionInputs) -> Conditioning:
        """Reference, audio, pose (and text) → conditioning tensors for `inputs.frames` video frames."""

    def fixed_latents(self, frames: int) -> dict[str, torch.Tensor]:
        """What `predict` encodes from no clip or condition, for windows of up to `frames` latent frames (wan-audio:
        the grey clip's latents; others: nothing); the latent cache keeps it so a trainer need not run encoders."""

    def use_fixed_latents(self, tensors: dict[str, torch.Tensor]) -> None:
        """Take tensors `fixed_latents` made (read back from a latent cache)."""

    def predict(self, denoiser: torch.nn.Module, noisy: torch.Tensor, timestep: torch.Tensor,
                conditioning: Conditioning) -> torch.Tensor:
        """The denoiser's output for noisy latents [B, T, ...], model timesteps [B] and batched conditioning.

        `denoiser` is passed in (not `self.denoiser`) so a trainer can pass the policy wrapped by accelerate.
        """

    def sample(self, inputs: ConditionInputs, seeds: list[int], steps: int, guidance: float) -> np.ndarray:
        """uint8 [len(seeds), inputs.frames, H, W, 3], one clip per seed."""

    def save(self, path: Path, card: str) -> None:
        """Write the model folder (family.json, one subfolder per part, model_card.md)."""

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> "ModelFamily":
        """Load a model folder of this family; a missing or mismatched part is one UserError naming it."""


def load_failure(error: BaseException) -> str:
    """What a one-line error quotes of a loader's exception: its first line, or its type when it says nothing."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def write_family_json(path: Path, name: str) -> None:
    """Mark a model folder as `name`'s (the registry reads it back)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "family.json").write_text(json.dumps({"family": name}) + "\n", encoding="utf-8")
