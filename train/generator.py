"""The embedded model as a `pairs generate` generator."""

from __future__ import annotations

import numpy as np

from pairs.generate import GenerationInputs
from pairs.media import resize_square
from train.motion_features import motion_features
from train.pipeline import EmbeddedPipeline


class EmbeddedGenerator:
    """Samples clips from a model folder; `many` batches all seeds of a condition in one pass."""

    def __init__(self, pipeline: EmbeddedPipeline, steps: int, guidance: float) -> None:
        self.pipeline, self.steps, self.guidance = pipeline, steps, guidance

    @property
    def version(self) -> str:
        """Which weights make the clips (recorded as each clip's generator_version)."""
        return self.pipeline.version

    def __call__(self, inputs: GenerationInputs, seed: int) -> np.ndarray:
        return self.many(inputs, [seed])[0]

    def many(self, inputs: GenerationInputs, seeds: list[int]) -> np.ndarray:
        """uint8 [len(seeds), frames, S, S, 3] at the model's size S."""
        rho = self.pipeline.denoiser.config.rho
        padded = -(-inputs.frames // rho) * rho  # the model makes whole latent frames; the extra is cut
        motion = motion_features(inputs.audio, inputs.pose, inputs.fps, padded)
        reference = resize_square(inputs.reference, self.pipeline.size)
        clips = self.pipeline.sample(
            np.repeat(reference[None], len(seeds), 0), np.repeat(motion[None], len(seeds), 0), seeds,
            steps=self.steps, guidance=self.guidance,
        )
        return clips[:, : inputs.frames]


def embedded_generator(model: str = "embedded", steps: int = 20, guidance: float = 2.0,
                       device: str = "cpu") -> EmbeddedGenerator:
    """Factory named by `pairs generate` when no --pipeline is given."""
    return EmbeddedGenerator(EmbeddedPipeline.load(model, device), steps, guidance)
