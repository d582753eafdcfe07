"""`pairs generate`: sample K candidate clips per condition and add them to the campaign like an ingest.

A generator is any callable `generator(inputs: ConditionInputs, seed: int) -> frames` returning uint8
[frames, H, W, 3]; one that also has `many(inputs, seeds)` is given all of a condition's seeds at once
(batched). A user names theirs with `--pipeline module:callable`; a model folder of any family
(`model_families.generator.model_generator`) is a generator too.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from campaign.store import Campaign
from data_schemas import Condition, UserError, from_table
from pairs.candidates.ingest import IngestReport, ingest_rows
from pairs.candidates.manifest import ManifestRow
from data_schemas.constants import FPS
from model_families.family import ConditionInputs
from media_io.codecs import read_audio, read_image, write_audio, write_image, write_video
from world.build import make_condition, reference_image

def load_callable(spec: str, flag: str = "--pipeline") -> Callable[..., Any]:
    """Import `module:attribute` and return it, or raise one clear UserError."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UserError(f"{flag} {spec!r}: write it as module:callable, e.g. mypackage.gen:generate")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"{flag} {spec!r}: cannot import {module_name} ({exc}); check PYTHONPATH") from None
    target = getattr(module, attribute, None)
    if not callable(target):
        raise UserError(f"{flag} {spec!r}: {module_name} has no callable {attribute!r}")
    return target


def _checked(frames: Any, inputs: ConditionInputs, spec: str) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", None)
        raise UserError(f"--pipeline {spec}: returned {type(frames).__name__} {getattr(frames, 'dtype', '')} {shape}; "
                        "expected a numpy uint8 array [frames, height, width, 3]")
    if frames.shape[0] != inputs.frames:
        raise UserError(f"--pipeline {spec}: returned {frames.shape[0]} frames for condition "
                        f"{inputs.condition_id}; expected {inputs.frames} (audio length × fps)")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise UserError(f"--pipeline {spec}: returned {frames.shape[2]}x{frames.shape[1]} frames; H.264 needs even sizes")
    return frames


@dataclass(frozen=True)
class _ConditionFiles:
    condition_id: str
    text: str | None
    reference: Path
    audio: Path
    pose: Path | None


def _conditions(campaign: Campaign, count: int, world_seed: int, seconds: float, staging: Path) -> list[_ConditionFiles]:
    """`count` conditions: the campaign's own first, then new ones rendered from the embedded world."""
    existing = sorted(from_table(campaign.table("conditions"), Condition), key=lambda c: c.condition_id)
    chosen = [
        _ConditionFiles(c.condition_id, c.text, campaign.media_file(c.reference_image), campaign.media_file(c.audio),
                        campaign.media_file(c.pose) if c.pose else None)
        for c in existing[:count]
    ]
    taken = {c.condition_id for c in existing}
    index = 0
    while len(chosen) < count:
        world = make_condition(world_seed, index, size=128, seconds=seconds)
        index += 1
        if world.condition_id in taken:
            continue
        folder = staging / world.condition_id
        write_image(folder / "reference.png", reference_image(world))
        write_audio(folder / "audio.wav", world.audio)
        np.save(folder / "pose.npy", world.pose)
        chosen.append(_ConditionFiles(world.condition_id, None, folder / "reference.png", folder / "audio.wav",
                                      folder / "pose.npy"))
    return chosen


@dataclass(frozen=True)
class Variant:
    """One way of sampling: a generator and the parameters recorded with every clip it makes."""

    generator: Callable[..., Any]
    name: str  # recorded as the clip's generator
    version: str
    params: dict[str, Any]


def generate(
    campaign: Campaign,
    variants: list[Variant],
    spec: str,
    conditions: int,
    candidates: int,
    seed: int,
    staging: Path,
    world_seed: int = 0,
    seconds: float = 3.0,
) -> IngestReport:
    """Sample `candidates` clips per condition (candidate k uses variant k mod len) and ingest them."""
    rows = []
    for files in tqdm(_conditions(campaign, conditions, world_seed, seconds, staging), desc="generate",
                      unit="condition"):
        inputs = ConditionInputs.at_world_fps(files.condition_id, files.text, read_image(files.reference),
                                               read_audio(files.audio), np.load(files.pose) if files.pose else None)
        for v, variant in enumerate(variants):
            seeds = [seed + k for k in range(candidates) if k % len(variants) == v]
            for candidate_seed, frames in zip(seeds, _sample(variant.generator, inputs, seeds, spec)):
                path = staging / files.condition_id / f"seed{candidate_seed}.mp4"
                write_video(path, _checked(frames, inputs, spec), FPS, inputs.audio)
                rows.append(ManifestRow(
                    line=len(rows) + 1, condition_id=files.condition_id, clip=path, reference_image=files.reference,
                    audio=files.audio, pose=files.pose, text=files.text, generator=variant.name,
                    generator_version=variant.version, seed=candidate_seed, params=variant.params,
                ))
    return ingest_rows(campaign, rows, progress=False)


def _sample(generator, inputs: ConditionInputs, seeds: list[int], spec: str) -> list[np.ndarray]:
    try:
        if hasattr(generator, "many"):
            return list(generator.many(inputs, seeds))
        return [generator(inputs, s) for s in seeds]
    except UserError:
        raise
    except Exception as exc:  # a failing user generator gets one line; --debug shows where
        raise UserError(f"--pipeline {spec}: failed on condition {inputs.condition_id} "
                        f"({type(exc).__name__}: {exc}); run with --debug for the traceback") from exc
