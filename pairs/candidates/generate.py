"""`pairs generate`: sample K candidate clips per condition and add them to the campaign like an ingest.

A generator is any callable `generator(inputs: ConditionInputs, seed: int) -> frames` returning uint8
[frames, H, W, 3]; one that also has `many(inputs, seeds)` is given all of a condition's seeds at once
(batched). A user names theirs with `--pipeline module:callable`; a model folder of any family
(`model_families.generator.model_generator`) is a generator too. Under `accelerate launch` the conditions
are dealt out over the processes (pairs/processes.py).
"""

from __future__ import annotations

import importlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from campaign.store import Campaign
from data_schemas import Condition, UserError, from_table
from pairs.candidates.ingest import IngestReport, RowChecker, checked_records
from pairs.candidates.manifest import ManifestRow
from data_schemas.constants import FPS
from model_families.family import ConditionInputs
from media_io.codecs import read_audio, read_image, write_audio, write_image, write_video
from pairs.processes import Sink, run_sharded
from world.build import WorldCondition, make_condition, reference_image


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


def _chosen(campaign: Campaign, count: int, world_seed: int, seconds: float) -> list[Condition | WorldCondition]:
    """`count` conditions: the campaign's own first, then new ones of the embedded world."""
    existing = sorted(from_table(campaign.table("conditions"), Condition), key=lambda c: c.condition_id)
    chosen: list[Condition | WorldCondition] = list(existing[:count])
    taken = {c.condition_id for c in existing}
    index = 0
    while len(chosen) < count:
        world = make_condition(world_seed, index, size=128, seconds=seconds)
        index += 1
        if world.condition_id not in taken:
            chosen.append(world)
    return chosen


def _files(campaign: Campaign, condition: Condition | WorldCondition, staging: Path) -> _ConditionFiles:
    """A condition's files: the campaign's media, or a new world condition rendered into `staging`."""
    if isinstance(condition, Condition):
        return _ConditionFiles(condition.condition_id, condition.text, campaign.media_file(condition.reference_image),
                               campaign.media_file(condition.audio),
                               campaign.media_file(condition.pose) if condition.pose else None)
    folder = staging / condition.condition_id
    write_image(folder / "reference.png", reference_image(condition))
    write_audio(folder / "audio.wav", condition.audio)
    np.save(folder / "pose.npy", condition.pose)
    return _ConditionFiles(condition.condition_id, None, folder / "reference.png", folder / "audio.wav",
                           folder / "pose.npy")


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
    """Sample `candidates` clips per condition (candidate k uses variant k mod len) and ingest them; under
    `accelerate launch` each process takes every n-th condition. A candidate already in the campaign (same
    condition, generator, version, seed and parameters) is not sampled again."""
    reports = run_sharded(campaign, "generate", lambda sink, rank, processes: _generate_share(
        campaign, variants, spec, list(enumerate(_chosen(campaign, conditions, world_seed, seconds)))[rank::processes],
        candidates, seed, staging, sink, progress=rank == 0))
    return IngestReport(ingested=sum(r.ingested for r in reports), unchanged=sum(r.unchanged for r in reports),
                        problems=sorted((p for r in reports for p in r.problems), key=lambda p: p.line))


def _generate_share(campaign: Campaign, variants: list[Variant], spec: str,
                    conditions: list[tuple[int, Condition | WorldCondition]], candidates: int,
                    seed: int, staging: Path, sink: Sink, progress: bool) -> IngestReport:
    """Sample and ingest the candidates of `conditions` ((index, condition) pairs) that the campaign lacks; each
    condition's clips go to `sink` as soon as they are made, so a killed run keeps them."""
    present = {(c["condition_id"], c["generator"], c["generator_version"], c["seed"], c["params"])
               for c in campaign.table("clips").select(
                   ["condition_id", "generator", "generator_version", "seed", "params"]).to_pylist()}
    report = IngestReport()
    checker = RowChecker(campaign, require_audio=True)
    for index, condition in tqdm(conditions, desc="generate", unit="condition", disable=not progress):
        wanted = []
        for v, variant in enumerate(variants):
            seeds = [seed + k for k in range(candidates) if k % len(variants) == v]
            params = json.dumps(variant.params, sort_keys=True)  # as the catalog stores them
            todo = [s for s in seeds if (condition.condition_id, variant.name, variant.version, s, params) not in present]
            report.unchanged += len(seeds) - len(todo)
            if todo:
                wanted.append((variant, todo))
        if not wanted:
            continue
        files = _files(campaign, condition, staging)
        inputs = ConditionInputs.at_world_fps(files.condition_id, files.text, read_image(files.reference),
                                               read_audio(files.audio), np.load(files.pose) if files.pose else None)
        rows = []
        for variant, seeds in wanted:
            for candidate_seed, frames in zip(seeds, _sample(variant.generator, inputs, seeds, spec)):
                path = staging / files.condition_id / f"seed{candidate_seed}.mp4"
                write_video(path, _checked(frames, inputs, spec), FPS, inputs.audio)
                rows.append(ManifestRow(
                    line=index * candidates + candidate_seed - seed + 1, condition_id=files.condition_id, clip=path,
                    reference_image=files.reference, audio=files.audio, pose=files.pose, text=files.text,
                    generator=variant.name, generator_version=variant.version, seed=candidate_seed,
                    params=variant.params,
                ))
        records = checked_records(campaign, checker, rows, report, progress=False)
        sink(records)
        report.ingested += len(records["clips"])
        shutil.rmtree(staging / files.condition_id)  # its media are in the campaign now: staging holds one condition
    return report


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
