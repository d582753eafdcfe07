"""Segment marks for scripted annotators: on the clip they vote against, the whole seconds where the embedded
SyncNet finds its lip sync worse than the other clip's in the same second.

A second's value is the mean of syncnet_python's per-window confidence (`SyncResult.window_confidence`) over the
windows that start in it. Marks come from SyncNet only, so they go with annotators who prefer a `sync/` score:
with another signal they would hand the annotators a second, unrelated opinion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from campaign.store import Campaign
from data_schemas.constants import FPS

CRITERION = "lip_sync"  # the criterion the marks are for; the scripted answers give every criterion the same


@dataclass(frozen=True)
class SyncBySecond:
    """One clip's SyncNet confidence per second (the last one may be partial) and its duration in seconds."""

    confidence: np.ndarray
    duration: float


def sync_by_second(campaign: Campaign) -> dict[str, SyncBySecond]:
    """sha256 → SyncBySecond of every clip with audio that SyncNet can read (at least one 5-frame window)."""
    # Here, not at the top: `annotate` commands import this module, and only scripted marks need torch.
    from pairs.scoring.score import clip_evidence
    from syncnet.lse import sync_scores
    from syncnet.networks import load_syncnet

    weights = load_syncnet(None)
    clips = campaign.table("clips").select(["sha256", "media_path", "fps", "has_audio"]).to_pylist()
    out = {}
    for clip in tqdm([c for c in clips if c["has_audio"]], desc="sync per second (scripted marks)", unit="clip"):
        evidence = clip_evidence(campaign.media_file(clip["media_path"]), clip["fps"], True)
        result = sync_scores(weights.net, weights.crop, evidence.frames, evidence.fps, evidence.track.landmarks,
                             evidence.audio)
        if result is not None:
            second = np.arange(result.windows) // int(FPS)  # sync_scores resamples every clip to FPS
            out[clip["sha256"]] = SyncBySecond(np.bincount(second, result.window_confidence) / np.bincount(second),
                                               len(evidence.frames) / evidence.fps)
    return out


def loser_marks(item: dict, answer: str, by_second: dict[str, SyncBySecond]) -> list[dict]:
    """The submission's marks for an A/B `item` answered `answer` (left / right / tie): the seconds of the clip
    voted against whose confidence is below the other clip's; none for a tie or a clip SyncNet could not read."""
    if answer not in ("left", "right") or CRITERION not in item["criteria"]:
        return []
    against = "right" if answer == "left" else "left"
    loser, winner = (by_second.get(item[side]["clip"]) for side in (against, answer))
    if loser is None or winner is None:
        return []
    seconds = min(len(loser.confidence), len(winner.confidence))
    worse = np.flatnonzero(loser.confidence[:seconds] < winner.confidence[:seconds])
    return [{"clip": against, "criterion": CRITERION, "start_s": float(s), "end_s": min(s + 1.0, loser.duration)}
            for s in worse if s < loser.duration]
