"""Scores computed from a clip's face track: expression (with blink and mouth–audio agreement), motion, quality.

Each scorer is a pure function of the clip's evidence returning {metric: value, or the reason there is
none}; distances are in inter-ocular units, so clip size does not matter.
"""

from __future__ import annotations

import cv2
import numpy as np

from pairs.scoring.face_track import (
    LEFT_BROW, LEFT_EYE, LEFT_EYE_OUTER, LOWER_LIP, NOSE_TIP, RIGHT_BROW, RIGHT_EYE, RIGHT_EYE_OUTER, UPPER_LIP,
    FaceTrack,
)
from pairs.scoring.evidence import ClipEvidence
from data_schemas.constants import SAMPLE_RATE


def _eye_aspect_ratio(track: FaceTrack, eye: tuple[int, ...]) -> np.ndarray:
    p = track.landmarks[:, list(eye)]
    vertical = np.linalg.norm(p[:, 1] - p[:, 5], axis=1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=1)
    return vertical / (2 * np.linalg.norm(p[:, 0] - p[:, 3], axis=1))


def audio_loudness(audio: np.ndarray, fps: float, frames: int) -> np.ndarray:
    """RMS of the audio in each video frame's window."""
    hop = SAMPLE_RATE / fps
    return np.array([np.sqrt(np.mean(audio[int(i * hop): int((i + 1) * hop)] ** 2) + 1e-12) for i in range(frames)])


def expression(clip: ClipEvidence) -> dict[str, float | str]:
    """How much the face moves: mouth and brow dynamics, blink rate, and how well the mouth follows the audio."""
    mouth = clip.track.distance(UPPER_LIP, LOWER_LIP)
    brows = (clip.track.distance(LEFT_BROW, LEFT_EYE_OUTER) + clip.track.distance(RIGHT_BROW, RIGHT_EYE_OUTER)) / 2
    ear = (_eye_aspect_ratio(clip.track, LEFT_EYE) + _eye_aspect_ratio(clip.track, RIGHT_EYE)) / 2
    closed = ear < 0.6 * np.nanmedian(ear)
    blinks = int(np.sum(closed[1:] & ~closed[:-1]) + closed[0])
    scores = {
        "mouth_std": float(np.nanstd(mouth)),
        "brow_std": float(np.nanstd(brows)),
        "blinks_per_minute": blinks / (len(mouth) / clip.fps / 60),
    }
    scores["mouth_audio"] = ("no audio track" if clip.audio is None else
                             mouth_audio_agreement(mouth, audio_loudness(clip.audio, clip.fps, len(mouth))))
    return scores


def mouth_audio_agreement(mouth: np.ndarray, loudness: np.ndarray, max_lag: int = 2) -> float:
    """Correlation of mouth opening with loudness on speech frames, at the best lag within ±max_lag frames."""
    speech = loudness > 0.1 * np.nanmax(loudness)
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        m = mouth[max(0, lag): len(mouth) + min(0, lag)]
        a = loudness[max(0, -lag): len(loudness) + min(0, -lag)]
        keep = np.isfinite(m) & speech[max(0, -lag): len(speech) + min(0, -lag)]
        if keep.sum() > 3 and np.std(m[keep]) > 0 and np.std(a[keep]) > 0:
            best = max(best, float(np.corrcoef(m[keep], a[keep])[0, 1]))
    return best


def motion(clip: ClipEvidence) -> dict[str, float]:
    """Head motion (nose-tip travel per frame), temporal flicker (VBench's form) and jitter."""
    nose = clip.track.landmarks[:, NOSE_TIP] / clip.track.interocular
    step = np.linalg.norm(np.diff(nose, axis=0), axis=1)
    centre = np.full((len(nose), 2), np.nan)  # frames without a face stay NaN
    centre[clip.track.found] = clip.track.landmarks[clip.track.found].mean(axis=1) / clip.track.interocular
    jerk = np.linalg.norm(np.diff(centre, n=2, axis=0), axis=1)
    frame_change = np.abs(np.diff(clip.frames.astype(np.int16), axis=0)).mean()
    return {
        "head_motion": float(np.nanmean(step)),
        "flicker": float((255.0 - frame_change) / 255.0),
        "jitter": float(np.nanmean(jerk)),
    }


def quality(clip: ClipEvidence) -> dict[str, float]:
    """Face-crop sharpness (variance of the Laplacian) and exposure (mean brightness, clipped share)."""
    crops = clip.track.crops(clip.frames)[clip.track.found]
    gray = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in crops]).astype(np.float64)
    sharpness = float(np.mean([cv2.Laplacian(g, cv2.CV_64F).var() for g in gray]))
    return {
        "sharpness": sharpness,
        "exposure": float(gray.mean() / 255.0),
        "clipped": float(((gray <= 2) | (gray >= 253)).mean()),
    }

