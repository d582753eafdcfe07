"""Per-video-frame motion features (audio + head pose) and their temporal channel redistribution (Hallo4)."""

from __future__ import annotations

import numpy as np
import torch

from data_schemas.constants import SAMPLE_RATE

N_MELS = 32
_HOP = 160  # 10 ms: four mel frames per 25 fps video frame
_N_FFT = 400
_POSE_SCALE = 5.0  # radians → roughly unit variance


def _mel_filterbank(n_mels: int, n_fft: int, sample_rate: int) -> np.ndarray:
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    mels = np.linspace(hz_to_mel(60.0), hz_to_mel(sample_rate / 2), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    bank = np.zeros((n_mels, len(bins)), np.float32)
    for i in range(n_mels):
        lo, mid, hi = hz[i], hz[i + 1], hz[i + 2]
        bank[i] = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None)
    return bank


_FILTERBANK = torch.from_numpy(_mel_filterbank(N_MELS, _N_FFT, SAMPLE_RATE))


def audio_features(audio: np.ndarray, fps: float, frames: int) -> np.ndarray:
    """Log-mel energies grouped per video frame: float32 [frames, 4·N_MELS] (at 25 fps)."""
    per_frame = int(round(SAMPLE_RATE / fps / _HOP))
    needed = frames * per_frame * _HOP
    wave = torch.from_numpy(np.asarray(audio, np.float32).reshape(-1))
    wave = torch.nn.functional.pad(wave, (0, max(0, needed - len(wave))))[:needed]
    spec = torch.stft(wave, _N_FFT, _HOP, window=torch.hann_window(_N_FFT), center=True, return_complex=True)
    power = spec.abs().pow(2)[:, : frames * per_frame]  # [freq, mel frames]
    logmel = torch.log(_FILTERBANK @ power + 1e-6)
    logmel = (logmel + 8.0) / 4.0  # roughly zero-mean, unit-scale for speech at our levels
    return logmel.T.reshape(frames, per_frame * N_MELS).numpy().astype(np.float32)


def motion_features(audio: np.ndarray, pose: np.ndarray | None, fps: float, frames: int) -> np.ndarray:
    """Audio features with the scaled pose track appended: float32 [frames, feature_dim(fps)]."""
    pose = np.zeros((frames, 3), np.float32) if pose is None else np.asarray(pose, np.float32)[:frames]
    if len(pose) < frames:  # a pose track a little shorter than the clip holds its last value
        pose = np.concatenate([pose, np.repeat(pose[-1:], frames - len(pose), 0)])
    return np.concatenate([audio_features(audio, fps, frames), pose * _POSE_SCALE], axis=1)


def feature_dim(fps: float = 25.0) -> int:
    """Width of one frame's motion features."""
    return int(round(SAMPLE_RATE / fps / _HOP)) * N_MELS + 3


def redistribute(features: torch.Tensor, rho: int) -> torch.Tensor:
    """Temporal channel redistribution: [B, F, D] → [B, F/ρ, ρ·D], ρ consecutive frames per latent frame."""
    b, f, d = features.shape
    if f % rho:
        raise ValueError(f"{f} frames do not group into latent frames of ρ={rho}")
    return features.reshape(b, f // rho, rho * d)


def undistribute(grouped: torch.Tensor, rho: int) -> torch.Tensor:
    """Exact inverse of `redistribute`: [B, T, ρ·D] → [B, T·ρ, D]."""
    b, t, rd = grouped.shape
    return grouped.reshape(b, t * rho, rd // rho)
