"""Driving audio → wav2vec2 features of every layer, one row per video frame with a window of neighbours.

Follows Hallo4's audio processor: the waveform is normalised as Wav2Vec2FeatureExtractor does, the convolutional
features are linearly resampled to the video frame rate *before* the transformer layers, and the outputs of all
transformer layers are kept.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Wav2Vec2Model

from data_schemas.constants import SAMPLE_RATE


def clip_waveform(audio: np.ndarray, frames: int, fps: float) -> np.ndarray:
    """The mono waveform covering `frames` video frames at `fps`: cut, or padded with silence."""
    samples = round(frames / fps * SAMPLE_RATE)
    audio = np.asarray(audio, np.float32)[:samples]
    return np.pad(audio, (0, samples - len(audio)))


@torch.no_grad()
def layer_features(encoder: Wav2Vec2Model, waveform: np.ndarray, frames: int) -> torch.Tensor:
    """Waveform → the output of every transformer layer at `frames` evenly spaced times: [frames, layers, width]."""
    device = encoder.device
    wave = torch.from_numpy(waveform).to(device)
    wave = (wave - wave.mean()) / torch.sqrt(wave.var(unbiased=False) + 1e-7)  # Wav2Vec2FeatureExtractor's do_normalize
    conv = encoder.feature_extractor(wave[None])  # [1, C, S]
    conv = F.interpolate(conv, size=frames, mode="linear", align_corners=True).transpose(1, 2)
    hidden, _ = encoder.feature_projection(conv)
    outputs: list[torch.Tensor] = []
    # Hooks, not output_hidden_states: the model's forward cannot take features already resampled.
    hooks = [layer.register_forward_hook(lambda _m, _i, out: outputs.append(out[0] if isinstance(out, tuple) else out))
             for layer in encoder.encoder.layers]
    try:
        encoder.encoder(hidden)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(outputs, dim=2)[0]


def windowed(features: torch.Tensor, radius: int) -> torch.Tensor:
    """[F, ...] → [F, 2·radius+1, ...]: each frame with its neighbours, repeating the clip's edge frames."""
    offsets = torch.arange(-radius, radius + 1)
    index = (torch.arange(len(features))[:, None] + offsets).clamp(0, len(features) - 1)
    return features[index]


def audio_features(encoder: Wav2Vec2Model, audio: np.ndarray, frames: int, fps: float, radius: int) -> torch.Tensor:
    """Mono audio at SAMPLE_RATE → float32 [frames, 2·radius+1, layers, width] on the CPU."""
    return windowed(layer_features(encoder, clip_waveform(audio, frames, fps), frames).float().cpu(), radius)
