"""What every scorer reads about a clip, decoded and tracked once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pairs.scoring.face_track import FaceTrack


@dataclass(frozen=True)
class ClipEvidence:
    frames: np.ndarray  # uint8 RGB [T, H, W, 3]
    audio: np.ndarray | None  # float32 mono at 16 kHz, or None without an audio track
    fps: float
    track: FaceTrack
    reference: np.ndarray | None = None  # the condition's reference image (RGB), when a scorer needs it
    reference_track: FaceTrack | None = None  # its one-frame face track
