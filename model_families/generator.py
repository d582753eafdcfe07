"""A loaded model family as a `pairs generate` generator: `generator(inputs, seed)` and batched `many`."""

from __future__ import annotations

import numpy as np

from model_families.family import ConditionInputs, ModelFamily
from model_families.registry import load_model


class FamilyGenerator:
    """Samples clips from a model folder; `many` gives all seeds of a condition to the family at once."""

    def __init__(self, model: ModelFamily, steps: int, guidance: float) -> None:
        self.model, self.steps, self.guidance = model, steps, guidance

    @property
    def version(self) -> str:
        """Which weights make the clips (recorded as each clip's generator_version)."""
        return self.model.version

    def __call__(self, inputs: ConditionInputs, seed: int) -> np.ndarray:
        return self.many(inputs, [seed])[0]

    def many(self, inputs: ConditionInputs, seeds: list[int]) -> np.ndarray:
        """uint8 [len(seeds), inputs.frames, H, W, 3]."""
        return self.model.sample(inputs, seeds, self.steps, self.guidance)


def model_generator(model: str = "embedded", steps: int = 20, guidance: float = 2.0,
                    device: str = "cpu") -> FamilyGenerator:
    """The generator of a model folder (any family), or of the shipped embedded model."""
    return FamilyGenerator(load_model(model, device), steps, guidance)
