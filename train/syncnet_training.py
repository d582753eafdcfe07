"""`train syncnet`: the embedded SyncNet, trained the way SyncNet was, on the embedded world.

Each step takes random 5-frame face-crop windows of in-sync world clips and pairs each with its own
audio window (label 1) and with the audio shifted by 3–15 frames (label 0); the contrastive loss pulls
in-sync embeddings together and pushes shifted ones past a margin. Crops come from the same face
track and crop rule the scorer uses, so training and scoring see the same pictures.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pairs.scoring.face_track import track_faces
from syncnet.networks import EmbeddedSyncNet, save_embedded
from syncnet.lse import (
    AUDIO_STEPS, FPS, SAMPLE_RATE, VSHIFT, WINDOW, crop_faces, face_boxes, mfcc, window_count,
)
from world.build import make_condition, render_clip
from train.config import SyncNetConfig


def _windows(config: SyncNetConfig) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Per clip: BGR crops [T, crop, crop, 3], MFCCs [13, steps] and how many windows the scorer reads."""
    crops, coefficients, counts = [], [], []
    for index in tqdm(range(config.conditions), desc="world crops", unit="clip"):
        condition = make_condition(config.world_seed, index, config.size, config.seconds)
        frames = render_clip(condition)
        crops.append(crop_faces(frames, face_boxes(track_faces(frames).landmarks), config.crop))
        coefficients.append(mfcc(condition.audio))
        counts.append(window_count(len(frames), len(condition.audio), coefficients[-1].shape[1]))
    return crops, coefficients, counts


def _batch(rng: np.random.Generator, crops: list[np.ndarray], coefficients: list[np.ndarray], counts: list[int],
           config: SyncNetConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lips, sounds, labels = [], [], []
    for _ in range(config.batch_size):
        clip = int(rng.integers(len(crops)))
        count = counts[clip]
        start = int(rng.integers(count))
        shift = int(rng.integers(config.min_shift, VSHIFT + 1)) * (1 if rng.random() < 0.5 else -1)
        shifted = start + shift if 0 <= start + shift < count else start - shift
        for audio_start, label in ((start, 1.0), (shifted, 0.0)):
            lips.append(crops[clip][start : start + WINDOW])
            sounds.append(coefficients[clip][:, 4 * audio_start : 4 * audio_start + AUDIO_STEPS])
            labels.append(label)
    video = torch.from_numpy(np.stack(lips)).float().permute(0, 4, 1, 2, 3)
    return video, torch.from_numpy(np.stack(sounds))[:, None], torch.tensor(labels)


def contrastive_loss(lip: torch.Tensor, aud: torch.Tensor, label: torch.Tensor, margin: float) -> torch.Tensor:
    """SyncNet's loss: squared distance for in-sync pairs, squared hinge on (margin − distance) for shifted ones."""
    d = torch.nn.functional.pairwise_distance(lip, aud)
    return (label * d.pow(2) + (1 - label) * torch.clamp(margin - d, min=0).pow(2)).mean()


def train_syncnet(config: SyncNetConfig) -> Path:
    """Train and save the embedded SyncNet in `config.out`; returns the folder."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    crops, coefficients, counts = _windows(config)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = EmbeddedSyncNet(config.crop, config.width, config.dim)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    began = time.time()
    with open(out / "train_log.jsonl", "w", encoding="utf-8") as log:
        bar = tqdm(range(config.steps), desc="train syncnet", unit="step")
        for step in bar:
            video, audio, label = _batch(rng, crops, coefficients, counts, config)
            loss = contrastive_loss(net.forward_lip(video), net.forward_aud(audio), label, config.margin)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            log.write(json.dumps({"step": step + 1, "loss": loss.item()}) + "\n")
    card = {**{k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
            "fps": FPS, "sample_rate": SAMPLE_RATE, "seconds_trained": round(time.time() - began, 1)}
    save_embedded(net.eval(), out, card)
    return out
