"""Head-pose tracks and blinks over time."""

from __future__ import annotations

import numpy as np

# Peak amplitudes in radians of yaw, pitch and roll.
_POSE_AMPLITUDE = np.array([0.16, 0.08, 0.07])
_BLINK_SHAPE = np.array([0.5, 1.0, 1.0, 0.6, 0.2], np.float32)


def pose_track(rng: np.random.Generator, frames: int, fps: float) -> np.ndarray:
    """Smooth head motion, float32 [frames, 3] yaw/pitch/roll in radians: a few slow sinusoids per axis."""
    t = np.arange(frames) / fps
    track = np.zeros((frames, 3))
    for axis in range(3):
        for _ in range(3):
            freq = rng.uniform(0.1, 0.7)
            track[:, axis] += rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    track /= np.maximum(np.abs(track).max(axis=0), 1e-6)
    return (track * _POSE_AMPLITUDE * rng.uniform(0.5, 1.0, 3)).astype(np.float32)


def blink_track(rng: np.random.Generator, frames: int, fps: float) -> np.ndarray:
    """Eyelid closure per frame in [0, 1]: blinks every 1–6 s, about 0.2 s long."""
    track = np.zeros(frames, np.float32)
    t = rng.uniform(0.3, 2.0)
    while True:
        start = int(t * fps)
        if start >= frames:
            return track
        end = min(frames, start + len(_BLINK_SHAPE))
        track[start:end] = _BLINK_SHAPE[: end - start]
        t += rng.uniform(1.0, 6.0)
