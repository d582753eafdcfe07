"""Generation on held-out conditions: K samples per model with the same seeds, scored by every scorer.

Policy, reference (and SFT) sample each held-out condition with seeds S … S+K−1, so sample k of one
model and sample k of another share the condition and the initial noise: their scores compare as
pairs. Clips are written as mp4 (with the condition's audio) under OUT/samples/<model>/, where people
can watch them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from data_schemas.constants import FPS
from model_families.family import ConditionInputs
from media_io.codecs import write_video
from pairs.scoring.score import clip_evidence, measure, reference_with_track, skip_reason
from pairs.scoring.scorers import Scorer
from model_families.generator import FamilyGenerator
from model_families.family import ModelFamily
from train.preference_data import condition_media, load_split


@dataclass(frozen=True)
class Sample:
    model: str
    condition_id: str
    seed: int
    path: Path


def heldout_inputs(dataset: str, limit: int | None = None) -> list[ConditionInputs]:
    """The distinct conditions of the held-out split, decoded into generator inputs."""
    part = load_split(dataset, "heldout")
    seen: dict[str, ConditionInputs] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for row in part:
            condition = row["condition_id"]
            if condition in seen:
                continue
            reference, audio, pose = condition_media(dataset, row, Path(scratch))
            seen[condition] = ConditionInputs.at_world_fps(condition, None, reference, audio, pose)
            if limit and len(seen) == limit:
                break
    return list(seen.values())


def generate_samples(models: dict[str, ModelFamily], conditions: list[ConditionInputs], samples: int,
                     seed: int, out: Path, steps: int = 20, guidance: float = 2.0) -> list[Sample]:
    """Sample every condition `samples` times from every model (seeds seed … seed+samples−1)."""
    seeds = list(range(seed, seed + samples))
    made = []
    bar = tqdm(total=len(models) * len(conditions), desc="sample", unit="condition")
    for name, pipeline in models.items():
        generator = FamilyGenerator(pipeline, steps, guidance)
        folder = Path(out) / "samples" / name
        folder.mkdir(parents=True, exist_ok=True)
        for inputs in conditions:
            for s, frames in zip(seeds, generator.many(inputs, seeds)):
                path = folder / f"{inputs.condition_id}-seed{s}.mp4"
                write_video(path, frames, inputs.fps, inputs.audio)
                made.append(Sample(name, inputs.condition_id, s, path))
            bar.update()
    bar.close()
    return made


def score_samples(samples: list[Sample], conditions: list[ConditionInputs],
                  scorers: list[Scorer]) -> list[dict]:
    """One row per sample: model, condition_id, seed and "scorer/metric" values (None where unmeasurable)."""
    references = {c.condition_id: reference_with_track(c.reference) for c in conditions}
    rows = []
    for sample in tqdm(samples, desc="score samples", unit="clip"):
        evidence = clip_evidence(sample.path, FPS, True, references[sample.condition_id])
        row: dict = {"model": sample.model, "condition_id": sample.condition_id, "seed": sample.seed}
        reason = skip_reason(evidence)
        for scorer in scorers:
            for metric, value in measure(scorer, evidence, reason).items():
                row[f"{scorer.name}/{metric}"] = None if isinstance(value, str) else value
        rows.append(row)
    return rows
