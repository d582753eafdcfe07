"""Our SyncNet scorer vs syncnet_python's `SyncNetInstance.evaluate`: same crops, same weights, same numbers?

Both read the same 224 × 224 face crops (written as the JPEG frames + 16 kHz wav that `evaluate`
reads, which we decode once and hand to ours) and the same randomly initialised SyncNetModel
weights. Prints clips/s of each, the ratio, and the largest LSE difference, for ours in fp32 and in
bf16 (autocast).

    python -m bench.score_sync [--clips 4] [--seconds 4] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
import types
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from scipy.io import wavfile

from pairs.scoring.face_track import track_faces
from syncnet.fast_lip import fast
from data_schemas.constants import SAMPLE_RATE
from pairs.scoring.scorers import PRECISIONS
from syncnet.lse import crop_faces, embed, face_boxes, lse, mfcc
from world.build import make_condition, render_clip


def _clip_dirs(root: Path, clips: int, seconds: float) -> list[Path]:
    """World clips cropped by SyncNet's rule, as `evaluate` wants them: frames as JPEG + audio.wav."""
    dirs = []
    for index in range(clips):
        condition = make_condition(11, index, 128, seconds)
        frames = render_clip(condition)
        crops = crop_faces(frames, face_boxes(track_faces(frames).landmarks), 224)
        folder = root / f"clip{index}"
        folder.mkdir()
        for i, crop in enumerate(crops):
            cv2.imwrite(str(folder / f"{i:06d}.jpg"), crop)
        audio = (np.clip(condition.audio, -1, 1) * 32767).astype(np.int16)
        wavfile.write(folder / "audio.wav", SAMPLE_RATE, audio)
        dirs.append(folder)
    return dirs


def _reference(net_path: Path, folder: Path, batch_size: int) -> tuple[float, float]:
    from syncnet_python import SyncNetInstance, SyncNetModel

    instance = SyncNetInstance(SyncNetModel(), device="cpu")
    instance.loadParameters(str(net_path))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints per-frame confidences
        _, conf, dist = instance.evaluate(types.SimpleNamespace(tmp_dir=str(folder), batch_size=batch_size, vshift=15))
    return conf, dist


def _ours(net: torch.nn.Module, folder: Path, batch_size: int, precision: str) -> tuple[float, float]:
    crops = np.stack([cv2.imread(str(p)) for p in sorted(folder.glob("*.jpg"))])
    _, audio = wavfile.read(folder / "audio.wav")
    result = lse(*embed(net, crops, audio, batch_size, precision=precision))
    return result.lse_c, result.lse_d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    from syncnet_python import SyncNetModel

    torch.manual_seed(0)
    net = SyncNetModel().eval()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.save(net.state_dict(), root / "syncnet_v2.model")
        dirs = _clip_dirs(root, args.clips, args.seconds)
        mfcc(np.zeros(SAMPLE_RATE, np.int16))  # warm imports for both sides
        began = time.perf_counter()
        theirs = [_reference(root / "syncnet_v2.model", d, 20) for d in dirs]
        reference_s = time.perf_counter() - began
        ours, quick = {}, fast(net)
        for precision in PRECISIONS:
            began = time.perf_counter()
            values = [_ours(quick, d, args.batch_size, precision) for d in dirs]
            ours[precision] = (time.perf_counter() - began, values)
    table = Table(title=f"SyncNet scoring, {args.clips} clips × {args.seconds:g} s, CPU, "
                        f"{torch.get_num_threads()} threads")
    for column in ("implementation", "seconds", "clips/s", "ratio", "largest |LSE difference|"):
        table.add_column(column)
    table.add_row("syncnet_python SyncNetInstance.evaluate (baseline)", f"{reference_s:.2f}",
                  f"{args.clips / reference_s:.2f}", "1.00×", "–")
    for precision, (seconds, values) in ours.items():
        diff = max(abs(a - b) for t, o in zip(theirs, values) for a, b in zip(t, o))
        table.add_row(f"portrait-dpo syncnet.lse, {precision}", f"{seconds:.2f}", f"{args.clips / seconds:.2f}",
                      f"{reference_s / seconds:.2f}×", f"{diff:.1e}")
    Console().print(table)
    print("goals: ≥ 3× faster with LSE equal to 1e-3 (fp32 is the equal one; bf16 trades ~1e-3 for speed)")

if __name__ == "__main__":
    main()
