"""Speech-like audio: voiced syllables with formants, consonant bursts and pauses, and its loudness track."""

from __future__ import annotations

import numpy as np

# (F1, F2, F3) in Hz of a few vowels; F1 is high for open vowels.
_VOWELS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410],
                    [660, 1720, 2410]], dtype=np.float64)


def synthesize_speech(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Mono float32 audio in [-1, 1]: words of 1–4 syllables separated by pauses."""
    n = int(round(seconds * sample_rate))
    audio = np.zeros(n, np.float64)
    f0_base = rng.uniform(95, 230)  # a voice: low for some speakers, high for others
    t = rng.uniform(0.05, 0.25)
    while t < seconds - 0.15:
        for _ in range(rng.integers(1, 5)):
            dur = rng.uniform(0.12, 0.28)
            if t + dur > seconds - 0.05:
                break
            start = int(t * sample_rate)
            syllable = _syllable(rng, dur, f0_base * rng.uniform(0.9, 1.15), sample_rate)
            audio[start : start + len(syllable)] += syllable[: n - start]
            t += dur + rng.uniform(0.0, 0.05)
        t += rng.uniform(0.12, 0.5)
    audio += rng.normal(0, 0.002, n)  # room noise, so silence is not digital zero
    return (audio / max(1e-6, np.abs(audio).max()) * 0.6).astype(np.float32)


def _syllable(rng: np.random.Generator, dur: float, f0: float, sample_rate: int) -> np.ndarray:
    n = int(dur * sample_rate)
    t = np.arange(n) / sample_rate
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 3) * t) + rng.normal(0, 0.003, n).cumsum() / 50)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    # A glottal-like source: a sum of harmonics with a falling spectrum.
    source = sum(np.sin(k * phase) / k**1.2 for k in range(1, 30))
    formants = _VOWELS[rng.integers(len(_VOWELS))] * rng.uniform(0.9, 1.1)
    voiced = _shape_spectrum(source, formants, sample_rate)
    envelope = np.sin(np.pi * np.clip(t / dur, 0, 1)) ** 0.7
    out = voiced * envelope * rng.uniform(0.5, 1.0)
    if rng.random() < 0.6:  # a consonant: a short noise burst at the onset
        burst = int(min(n, rng.uniform(0.02, 0.06) * sample_rate))
        noise = _shape_spectrum(rng.normal(0, 1, burst), np.array([2500.0, 4000.0, 5500.0]), sample_rate)
        out[:burst] += noise * np.hanning(burst) * 0.4
    return out


def _shape_spectrum(signal: np.ndarray, formants: np.ndarray, sample_rate: int) -> np.ndarray:
    spectrum = np.fft.rfft(signal)
    freqs = np.fft.rfftfreq(len(signal), 1 / sample_rate)
    gain = sum(np.exp(-0.5 * ((freqs - f) / (60 + 0.08 * f)) ** 2) / (i + 1) for i, f in enumerate(formants))
    shaped = np.fft.irfft(spectrum * (gain + 0.02), len(signal))
    return shaped / max(1e-9, np.abs(shaped).max())


def loudness_per_frame(audio: np.ndarray, sample_rate: int, fps: float, frames: int) -> np.ndarray:
    """How open a mouth saying this would be at each video frame: RMS in dB mapped to [0, 1]."""
    hop = sample_rate / fps
    window = int(hop)
    out = np.zeros(frames, np.float32)
    for i in range(frames):
        centre = int((i + 0.5) * hop)
        chunk = audio[max(0, centre - window // 2) : centre + window // 2]
        rms = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) if len(chunk) else 0.0
        out[i] = np.clip((20 * np.log10(rms + 1e-6) + 40) / 28, 0, 1)
    return out
