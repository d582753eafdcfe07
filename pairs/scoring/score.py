"""`pairs score`: every clip not yet scored by a scorer's current version gets its scores (or the reason why not).

Each clip is decoded once and its face tracked once; every scorer reads that. Results are cached by
(clip sha256, scorer, version): a re-run only does what is missing. Under `accelerate launch` the clips to
score are dealt out over the processes (pairs/processes.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from campaign.store import Campaign
from data_schemas import Score, require_valid
from pairs.scoring.evidence import ClipEvidence
from pairs.scoring.face_track import FaceTrack, track_faces
from media_io.codecs import read_audio, read_frames, read_image
from media_io.read_ahead import read_ahead
from pairs.processes import Sink, run_sharded
from pairs.scoring.scorers import Scorer

MIN_FRAMES = 5
MIN_FACE_SHARE = 0.5
WRITE_EVERY = 64  # scores per write (to the catalog, or a shard), so an interrupted run keeps what it scored


@dataclass
class ScoreRun:
    """What a run did: clips scored per scorer, and reasons for clips that could not be."""

    scored: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    cached: int = 0
    marked: dict[str, dict[str, int]] = field(default_factory=dict)  # scorer → mark → clips scored with it

    def mark_advice(self, scorers: list[Scorer]) -> list[str]:
        """Each scorer's advice line, for scorers that marked most of the clips they scored in this run."""
        return [s.mark_advice for s in scorers
                if s.mark_advice and 2 * sum(self.marked.get(s.name, {}).values()) > self.scored.get(s.name, 0)]


def skip_reason(evidence: ClipEvidence) -> str | None:
    """Why no scorer can read this clip (too short, no face), or None."""
    if len(evidence.frames) < MIN_FRAMES:
        return f"too short ({len(evidence.frames)} frames)"
    share = float(evidence.track.found.mean())
    if share < MIN_FACE_SHARE:
        return f"no face found in {1 - share:.0%} of frames"
    return None


def score_campaign(campaign: Campaign, scorers: list[Scorer], progress: bool = True) -> ScoreRun:
    """Score what is missing, split over the processes of `accelerate launch` (or in this one); returns the
    counts of all processes."""
    return _total(run_sharded(campaign, "score", lambda sink, rank, processes: _score_share(
        campaign, scorers, sink, rank, processes, progress and rank == 0)))


def _total(runs: list[ScoreRun]) -> ScoreRun:
    """Several processes' counts added up."""
    return ScoreRun(scored=_summed(r.scored for r in runs),
                    skipped={name: _summed(r.skipped[name] for r in runs) for name in runs[0].skipped},
                    cached=sum(r.cached for r in runs),
                    marked={name: _summed(r.marked.get(name, {}) for r in runs)
                            for name in sorted({name for r in runs for name in r.marked})})


def _summed(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for part in counts:
        for key, n in part.items():
            total[key] = total.get(key, 0) + n
    return total


def _score_share(campaign: Campaign, scorers: list[Scorer], sink: Sink, rank: int, processes: int,
                 progress: bool) -> ScoreRun:
    """Score every `processes`-th clip that lacks a score, starting at `rank`."""
    done = {(r["clip"], r["scorer"], r["scorer_version"])
            for r in campaign.table("scores").select(["clip", "scorer", "scorer_version"]).to_pylist()}
    clips = campaign.table("clips").select(["sha256", "condition_id", "media_path", "fps", "has_audio"]).to_pylist()
    todo = [(clip, [s for s in scorers if (clip["sha256"], s.name, s.version) not in done]) for clip in clips]
    todo = [(clip, needed) for clip, needed in todo if needed]
    mine = todo[rank::processes]
    run = ScoreRun(scored={s.name: 0 for s in scorers}, skipped={s.name: {} for s in scorers},
                   cached=len(clips) - len(todo) if rank == 0 else 0)  # counted once, not once per process
    needs_reference = any(s.needs_reference for s in scorers)
    references = _references(campaign, {clip["condition_id"] for clip, _ in mine}) if needs_reference else {}
    pending: list[Score] = []

    def evidence_of(work: tuple[dict, list[Scorer]]) -> ClipEvidence:
        clip = work[0]
        return clip_evidence(campaign.media_file(clip["media_path"]), clip["fps"], clip["has_audio"],
                             references.get(clip["condition_id"]))

    # The next clip is decoded and its face tracked (most of a clip's time) while this one's scorers run.
    with _core_left_free():
        for (clip, needed), evidence in tqdm(read_ahead(mine, evidence_of), total=len(mine), desc="score",
                                             unit="clip", disable=not progress):
            reason = skip_reason(evidence)
            for scorer in needed:
                pending += _scores(clip["sha256"], scorer, evidence, reason, run)
            if len(pending) >= WRITE_EVERY:
                sink({"scores": pending})
                pending = []
    sink({"scores": pending})
    return run


def _core_left_free() -> threadpool_limits:
    """The thread pools of torch (OpenMP) and numpy (OpenBLAS) one core smaller while the next clip's face is
    tracked on another: their idle threads spin and slow FaceMesh down (on 2 cores one process scored 100 clips in
    18.3 s with both pools at 2 threads, in 15.1 s with OpenBLAS at 1). Under accelerate launch each process has
    one thread already."""
    return threadpool_limits(limits=max(1, (os.cpu_count() or 1) - 1))


Reference = tuple[np.ndarray, FaceTrack]  # a condition's reference image and its one-frame face track


def reference_with_track(image: np.ndarray) -> Reference:
    return image, track_faces(image[None])


def clip_evidence(path: Path, fps: float, has_audio: bool, reference: Reference | None = None) -> ClipEvidence:
    """Decode a clip and track its face once, for every scorer."""
    frames = read_frames(path)
    return ClipEvidence(frames, read_audio(path) if has_audio else None, fps, track_faces(frames),
                        *(reference or (None, None)))


def measure(scorer: Scorer, evidence: ClipEvidence, reason: str | None) -> dict[str, float | str]:
    """{metric: value, or the reason there is none} of one clip; `reason` is its `skip_reason`."""
    values = {} if reason else scorer.score(evidence)
    out: dict[str, float | str] = {}
    for metric in scorer.metrics:
        value = values.get(metric)
        out[metric] = reason or (value if isinstance(value, str) else
                                 float(value) if value is not None and np.isfinite(value) else "not measurable")
    return out


def _references(campaign: Campaign, condition_ids: set[str]) -> dict[str, Reference]:
    return {row["condition_id"]: reference_with_track(read_image(campaign.media_file(row["reference_image"])))
            for row in campaign.table("conditions").select(["condition_id", "reference_image"]).to_pylist()
            if row["condition_id"] in condition_ids}


def _scores(sha: str, scorer: Scorer, evidence: ClipEvidence, reason: str | None, run: ScoreRun) -> list[Score]:
    records = []
    height, width = evidence.frames.shape[1:3]
    mouth = evidence.track.mouth_box(width, height)  # the annotation page zooms on it
    measured = measure(scorer, evidence, reason)
    numbers = {m: v for m, v in measured.items() if not isinstance(v, str)}
    mark = scorer.mark(numbers) if len(numbers) == len(measured) else None  # only a whole set of values is marked
    if mark:
        run.marked.setdefault(scorer.name, {})[mark] = run.marked.get(scorer.name, {}).get(mark, 0) + 1
    details = {**({"mouth_box": mouth} if mouth else {}), **({"mark": mark} if mark else {})}
    for metric, value in measured.items():
        why = value if isinstance(value, str) else None
        if why:
            run.skipped[scorer.name][why] = run.skipped[scorer.name].get(why, 0) + 1
        records.append(require_valid(Score(clip=sha, scorer=scorer.name, scorer_version=scorer.version, metric=metric,
                                           value=None if why else value, reason=why, details=details),
                                     f"clip {sha[:12]}"))
    if reason is None:
        run.scored[scorer.name] += 1
    return records
