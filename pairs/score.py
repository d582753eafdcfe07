"""`pairs score`: every clip not yet scored by a scorer's current version gets its scores (or the reason why not).

Each clip is decoded once and its face tracked once; every scorer reads that. Results are cached by
(clip sha256, scorer, version): a re-run only does what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from annotate.store import Campaign
from data_schemas import Score, UserError, require_valid
from pairs.face_track import track_faces
from pairs.landmark_scores import METRICS, SCORERS, VERSIONS, ClipEvidence
from pairs.media import read_audio, read_frames

MIN_FRAMES = 5
MIN_FACE_SHARE = 0.5
WRITE_EVERY = 16  # clips per write, so an interrupted run keeps what it scored


@dataclass
class ScoreRun:
    """What a run did: clips scored per scorer, and reasons for clips that could not be."""

    scored: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)
    cached: int = 0


def _skip_reason(evidence: ClipEvidence) -> str | None:
    if len(evidence.frames) < MIN_FRAMES:
        return f"too short ({len(evidence.frames)} frames)"
    share = float(evidence.track.found.mean())
    if share < MIN_FACE_SHARE:
        return f"no face found in {1 - share:.0%} of frames"
    return None


def score_campaign(campaign: Campaign, scorers: list[str], progress: bool = True) -> ScoreRun:
    """Score what is missing; returns counts for the summary."""
    unknown = [s for s in scorers if s not in SCORERS]
    if unknown:
        raise UserError(f"--scorers: unknown {', '.join(unknown)}; available: {', '.join(SCORERS)}")
    done = {(r["clip"], r["scorer"], r["scorer_version"])
            for r in campaign.table("scores").select(["clip", "scorer", "scorer_version"]).to_pylist()}
    run = ScoreRun(scored={s: 0 for s in scorers}, skipped={s: {} for s in scorers})
    pending: list[Score] = []
    clips = campaign.table("clips").select(["sha256", "media_path", "fps", "has_audio"]).to_pylist()
    for clip in tqdm(clips, desc="score", unit="clip", disable=not progress):
        needed = [s for s in scorers if (clip["sha256"], s, VERSIONS[s]) not in done]
        if not needed:
            run.cached += 1
            continue
        path = campaign.media_file(clip["media_path"])
        frames = read_frames(path)
        audio = read_audio(path) if clip["has_audio"] else None
        evidence = ClipEvidence(frames, audio, clip["fps"], track_faces(frames))
        reason = _skip_reason(evidence)
        for scorer in needed:
            pending += _scores(clip["sha256"], scorer, evidence, reason, run)
        if len(pending) >= WRITE_EVERY * 4:
            campaign.add_scores(pending)
            pending = []
    campaign.add_scores(pending)
    return run


def _scores(sha: str, scorer: str, evidence: ClipEvidence, reason: str | None, run: ScoreRun) -> list[Score]:
    values = {} if reason else SCORERS[scorer](evidence)
    records = []
    for metric in METRICS[scorer]:
        value = values.get(metric)
        why = reason or (None if value is not None and np.isfinite(value) else
                         "no audio track" if metric == "mouth_audio" and evidence.audio is None else "not measurable")
        if why:
            run.skipped[scorer][why] = run.skipped[scorer].get(why, 0) + 1
        records.append(require_valid(Score(clip=sha, scorer=scorer, scorer_version=VERSIONS[scorer], metric=metric,
                                           value=None if why else float(value), reason=why), f"clip {sha[:12]}"))
    if not reason:
        run.scored[scorer] += 1
    return records


def score_table(campaign: Campaign) -> list[tuple]:
    """(scorer, metric, scored, skipped, reasons, mean, sd) per metric of the campaign's current scores."""
    con = campaign.connect()
    return con.execute("""
        SELECT scorer, metric, count(value), count(*) - count(value),
               coalesce(string_agg(DISTINCT reason, '; '), ''), avg(value), stddev_samp(value)
        FROM scores GROUP BY scorer, metric ORDER BY scorer, metric
    """).fetchall()
