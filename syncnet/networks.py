"""SyncNet networks: loading real `syncnet_v2.model` weights, and the embedded SyncNet of the same design.

The embedded network keeps SyncNet's two streams (a 3-D conv over 5 frames of the face crop, a 2-D
conv over 13 × 20 MFCCs, each into an embedding compared by Euclidean distance) at a smaller width
and crop, so `train syncnet` can train it on the embedded world in minutes on a CPU. Its checkpoint
ships with the package and is the default when no `--syncnet-weights` is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from media_io.hashing import sha256_file
from data_schemas import UserError
from syncnet.fast_lip import fast

SHIPPED = Path(__file__).parent / "checkpoint"
REAL_CROP = 224
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"
# LSE-C below this floor: the embedded SyncNet found no sync peak (syncnet.lse.NO_SYNC_PEAK). Calibrated
# on world conditions it was not trained on (`python -m pairs.scoring.sync_calibration`, seeds 9100/9200/3,
# decoded, face-tracked and cropped as `pairs score` does), shipped checkpoint e6ba10f15338:
#   in sync        22 clips (12 × 128 px × 4 s, 8 × 64 px × 2 s, 2 × 64 px × 1.2 s): LSE-C 1.85–2.75,
#                  median 2.5, offset 0 in all;
#   audio-shifted  22 clips: LSE-C 1.56–2.56, offset 4 (the true shift) in all; jittered: 1.34–2.45, offset 0;
#   frozen mouth   22 clips: LSE-C 0.09–0.61, offset at the ±15 edge in 18 of them: no sync to find;
#   a photograph (scikit-image's astronaut) with its mouth stretched by the speech, in sync, 6 frames late or
#   static: LSE-C 0.17–0.21, offsets −10/−11, whatever its sync.
# 1.0 sits well under every in-sync clip (about half the lowest) and above every clip without a moving mouth.
EMBEDDED_LSE_C_FLOOR = 1.0


class EmbeddedSyncNet(nn.Module):
    """SyncNet's design at `width` channels: lip stream for [B, 3, 5, crop, crop], audio stream for [B, 1, 13, 20]."""

    def __init__(self, crop: int = 64, width: int = 32, dim: int = 128):
        super().__init__()
        if crop % 16:
            raise ValueError("crop must be a multiple of 16")
        self.config = {"crop": crop, "width": width, "dim": dim}
        w = width

        def block3d(cin: int, cout: int, kernel: tuple, stride: tuple, padding: tuple) -> list[nn.Module]:
            return [nn.Conv3d(cin, cout, kernel, stride, padding), nn.BatchNorm3d(cout), nn.ReLU()]

        def block2d(cin: int, cout: int, kernel: tuple, padding: tuple) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, kernel, padding=padding), nn.BatchNorm2d(cout), nn.ReLU()]

        self.netcnnlip = nn.Sequential(
            *block3d(3, w, (5, 5, 5), (1, 2, 2), (0, 2, 2)),
            *block3d(w, 2 * w, (1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *block3d(2 * w, 4 * w, (1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *block3d(4 * w, 4 * w, (1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *block3d(4 * w, 8 * w, (1, crop // 16, crop // 16), (1, 1, 1), (0, 0, 0)),
        )
        self.netcnnaud = nn.Sequential(
            *block2d(1, w, (3, 3), (1, 1)),
            *block2d(w, 2 * w, (3, 3), (1, 1)),
            nn.MaxPool2d((3, 3), stride=(1, 2)),
            *block2d(2 * w, 4 * w, (3, 3), (1, 1)),
            nn.MaxPool2d((3, 3), stride=(2, 2)),
            *block2d(4 * w, 8 * w, (5, 4), (0, 0)),
        )
        self.netfclip = nn.Sequential(nn.Linear(8 * w, 8 * w), nn.BatchNorm1d(8 * w), nn.ReLU(), nn.Linear(8 * w, dim))
        self.netfcaud = nn.Sequential(nn.Linear(8 * w, 8 * w), nn.BatchNorm1d(8 * w), nn.ReLU(), nn.Linear(8 * w, dim))

    # Crops arrive as 0–255 BGR and MFCCs unscaled, as SyncNet reads them; scaling keeps the first
    # BatchNorms' statistics tame.
    lip_scale, audio_scale = 1 / 255.0, 1 / 10.0

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.netcnnlip(x * self.lip_scale).flatten(1))

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(x * self.audio_scale).flatten(1))


@dataclass(frozen=True)
class SyncNetWeights:
    """A network ready to score, the crop size it reads and a name for the weights that made the scores."""

    net: nn.Module
    crop: int
    name: str
    confidence_floor: float | None = None  # LSE-C under it means no sync peak; calibrated for the embedded net only
    world_trained: bool = False  # the embedded SyncNet: it has seen nothing but the drawn world


def save_embedded(net: EmbeddedSyncNet, out: Path, card: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, out / WEIGHTS_FILE)
    (out / CONFIG_FILE).write_text(json.dumps({**net.config, "training": card}, indent=2) + "\n")


def load_syncnet(path: Path | None, device: str = "cpu") -> SyncNetWeights:
    """Real SyncNet from a `syncnet_v2.model` file, an embedded SyncNet folder, or the shipped embedded one."""
    path = SHIPPED if path is None else Path(path)
    if path.is_dir():
        if not (path / WEIGHTS_FILE).is_file():
            raise UserError(f"{path}: no {WEIGHTS_FILE}; give a syncnet_v2.model file or a `train syncnet` folder")
        config = json.loads((path / CONFIG_FILE).read_text())
        net = EmbeddedSyncNet(config["crop"], config["width"], config["dim"])
        net.load_state_dict(load_file(path / WEIGHTS_FILE))
        crop, name = config["crop"], f"embedded-syncnet:{sha256_file(path / WEIGHTS_FILE)[:12]}"
        floor, world_trained = EMBEDDED_LSE_C_FLOOR, True
    elif path.is_file():
        from syncnet_python import SyncNetModel

        net = SyncNetModel()
        try:  # torch's own message for a file it cannot read suggests loading it unsafely: not repeated here
            state = torch.load(path, map_location="cpu", weights_only=True)
        except OSError as exc:  # unreadable: permissions, a cut download
            raise UserError(f"{path}: cannot read it ({exc.strerror or exc}); give syncnet_python's syncnet_v2.model") \
                from None
        except Exception:  # noqa: BLE001 - whatever the file is, it is not torch weights
            raise UserError(f"{path}: not a torch weights file; give syncnet_python's syncnet_v2.model") from None
        try:
            net.load_state_dict(state)
        except Exception as exc:  # the user's file holds other weights
            raise UserError(f"{path}: not SyncNet weights ({str(exc).splitlines()[0]}); "
                            "give syncnet_python's syncnet_v2.model") from None
        crop, name = REAL_CROP, f"syncnet_v2:{sha256_file(path)[:12]}"
        floor, world_trained = None, False  # not calibrated here: only the search-edge rule marks its clips
    else:
        raise UserError(f"{path}: no such SyncNet weights; pass --syncnet-weights PATH to syncnet_v2.model")
    return SyncNetWeights(fast(net.eval().to(device)), crop, name, floor, world_trained)
