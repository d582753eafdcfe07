"""Lip sync the way every talking-head paper reports it: SyncNet's LSE-D, LSE-C and AV offset.

The maths is syncnet_python's (`SyncNetInstance.evaluate`): 13 MFCCs at 100 Hz from
python_speech_features, 5-frame video windows at 25 fps against 20-step audio windows, the mean
distance at each of ±15 frame offsets, LSE-D = its minimum, LSE-C = median − minimum, and its face
crop rule. What differs is speed: all windows go through the network in a few batched passes and the
distances are one tensor operation. Clips at other frame rates are resampled to 25 fps, and clips
shorter than the reference pipeline's minimum still get a score.

Any network with `forward_lip` and `forward_aud` works: the `syncnet-python` package's SyncNetModel
with real `syncnet_v2.model` weights, or the embedded one `train syncnet` makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import python_speech_features
import torch
from scipy import signal

from data_schemas.constants import FPS, SAMPLE_RATE

WINDOW = 5  # video frames per SyncNet window
AUDIO_STEPS = 20  # MFCC steps per window: 5 frames at 100 Hz / 25 fps
VSHIFT = 15
CROP_SCALE = 0.40
PAD_GRAY = 110
SMOOTHING = 13  # median-filter length of the crop track, in frames


NO_SYNC_PEAK = "no sync peak"  # the mark of a clip whose LSE numbers say nothing about its sync


@dataclass(frozen=True)
class SyncResult:
    lse_d: float
    lse_c: float
    # LSE-C as the clip plays: the median distance less the distance at offset 0, not at the best offset. LSE-C itself
    # is blind to a mouth that follows the speech late (its best offset moves with it); this is LSE-C at offset 0 and
    # falls the further the best offset lies from it.
    lse_c_at_0: float
    offset: int
    windows: int
    # Per window (the 5 frames from its index on): syncnet_python's "framewise conf", the median distance less the
    # window's distance at the clip's best offset, median-filtered over 9 windows. Where in the clip sync fails.
    window_confidence: np.ndarray


def has_sync_peak(lse_c: float, offset: float, confidence_floor: float | None) -> bool:
    """Whether SyncNet prefers one offset inside its search: the best one not at the edge (where the true
    offset may lie beyond, or none stands out) and, for a network with a calibrated floor, LSE-C above it."""
    return abs(offset) < VSHIFT and (confidence_floor is None or lse_c >= confidence_floor)


def mfcc(audio: np.ndarray) -> np.ndarray:
    """[13, steps] MFCCs of 16 kHz audio, computed on int16 sample values as syncnet_python reads its wav."""
    samples = audio if audio.dtype == np.int16 else (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    return python_speech_features.mfcc(samples, SAMPLE_RATE).T.astype(np.float32)


def resample_frames(frames: np.ndarray, fps: float) -> np.ndarray:
    """The frames a 25 fps camera would have seen (nearest frame in time)."""
    if abs(fps - FPS) < 1e-3:
        return frames
    count = int(np.floor(len(frames) * FPS / fps))
    return frames[np.minimum(np.round(np.arange(count) * fps / FPS).astype(int), len(frames) - 1)]


def face_boxes(landmarks: np.ndarray) -> np.ndarray:
    """Per-frame tight face boxes [T, 4] from landmarks, interpolated over frames without a face."""
    found = np.isfinite(landmarks[:, 0, 0])
    boxes = np.full((len(landmarks), 4), np.nan, np.float32)
    boxes[found, :2] = np.nanmin(landmarks[found], axis=1)
    boxes[found, 2:] = np.nanmax(landmarks[found], axis=1)
    frames = np.arange(len(boxes))
    for k in range(4):
        boxes[:, k] = np.interp(frames, frames[found], boxes[found, k])
    return boxes


def crop_faces(frames: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """syncnet_python's crop: a box-size-smoothed square from just above the face centre, BGR, [T, size, size, 3]."""
    half = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    kernel = min(SMOOTHING, len(boxes) - (1 - len(boxes) % 2))  # medfilt wants an odd length no longer than the signal
    half, cx, cy = (signal.medfilt(v, kernel) for v in (half, cx, cy))
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for t, frame in enumerate(frames):
        pad = int(half[t] * (1 + 2 * CROP_SCALE))
        padded = cv2.copyMakeBorder(frame[..., ::-1], pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                    value=(PAD_GRAY,) * 3)
        my, mx = cy[t] + pad, cx[t] + pad
        y0, y1 = int(my - half[t]), int(my + half[t] * (1 + 2 * CROP_SCALE))
        x0, x1 = int(mx - half[t] * (1 + CROP_SCALE)), int(mx + half[t] * (1 + CROP_SCALE))
        out[t] = cv2.resize(padded[y0:y1, x0:x1], (size, size))
    return out




def window_count(frames: int, samples: int, mfcc_steps: int) -> int:
    """How many 5-frame windows SyncNetInstance.evaluate scores: counted from the frames and the sample
    count (`len(audio) // 640`), bounded so the last 20-step MFCC window is whole."""
    return min(frames, samples // int(SAMPLE_RATE // FPS), (mfcc_steps - AUDIO_STEPS) // 4 + 1 + WINDOW) - WINDOW


@torch.no_grad()
def embed(net: torch.nn.Module, crops: np.ndarray, audio: np.ndarray, batch_size: int = 64,
          device: str = "cpu", precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """Lip and audio embeddings of every window, as SyncNetInstance.evaluate pairs them.

    `bf16` runs the network under bfloat16 autocast: about 2× faster on CPUs with AMX, LSE within a few
    1e-3 of fp32 (the default, which equals syncnet_python to 1e-6)."""
    coefficients = mfcc(audio)
    count = window_count(len(crops), len(audio), coefficients.shape[1])
    if count <= 0:
        return torch.empty(0), torch.empty(0)
    video = torch.from_numpy(crops).to(device)  # [T, H, W, 3] as read: made float in each batch's window copy
    audio = torch.from_numpy(coefficients).unfold(1, AUDIO_STEPS, 4).permute(1, 0, 2)[:, None]  # [windows, 1, 13, 20]
    lips, sounds = [], []
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")
    for start in range(0, count, batch_size):
        end = min(count, start + batch_size)
        # One copy per batch, to float with time innermost ([n, H, W, 3, 5]); the [n, 3, 5, H, W] view of it
        # flattens into the lip twin's channels-last 15-channel input (channel c·5 + t) without another.
        windows = video[start : end + WINDOW - 1].unfold(0, WINDOW, 1)
        lip_in = torch.empty(windows.shape, device=device).copy_(windows).permute(0, 3, 4, 1, 2)
        aud_in = audio[start:end].to(device)
        with autocast:
            lips.append(net.forward_lip(lip_in).float().cpu())
            sounds.append(net.forward_aud(aud_in).float().cpu())
    return torch.cat(lips), torch.cat(sounds)


def lse(lip: torch.Tensor, aud: torch.Tensor, vshift: int = VSHIFT) -> SyncResult:
    """LSE-D, LSE-C (at the best offset and at 0) and offset from window embeddings, with calc_pdist's zero
    padding at the clip ends."""
    offsets = 2 * vshift + 1
    padded = torch.nn.functional.pad(aud, (0, 0, vshift, vshift))
    shifted = padded.unfold(0, offsets, 1).permute(0, 2, 1)  # [N, offsets, D]
    dists = torch.nn.functional.pairwise_distance(lip[:, None, :].expand_as(shifted), shifted)
    mean = dists.mean(0)
    minimum, at = torch.min(mean, 0)
    median = torch.median(mean)
    return SyncResult(lse_d=float(minimum), lse_c=float(median - minimum), lse_c_at_0=float(median - mean[vshift]),
                      offset=int(vshift - at), windows=len(lip),
                      window_confidence=signal.medfilt((median - dists[:, at]).numpy(), 9))


def sync_scores(net: torch.nn.Module, crop_size: int, frames: np.ndarray, fps: float, landmarks: np.ndarray,
                audio: np.ndarray, batch_size: int = 64, device: str = "cpu",
                precision: str = "fp32") -> SyncResult | None:
    """SyncNet scores of one clip (frames RGB, landmarks from its face track), or None when too short."""
    frames = resample_frames(frames, fps)
    landmarks = resample_frames(landmarks, fps)
    crops = crop_faces(frames, face_boxes(landmarks), crop_size)
    lip, aud = embed(net, crops, audio, batch_size, device, precision)
    return lse(lip, aud) if len(lip) else None
