"""Where the embedded SyncNet's `no sync peak` floor comes from: its LSE-C and offsets on rendered world clips.

Renders world conditions (in sync and each degradation), scores them as `pairs score` does (decode, face
track, SyncNet's crop rule) with a SyncNet, and prints per variant the LSE-C range (at the best offset and at
offset 0) and the offsets found.
The floor in `syncnet.networks.EMBEDDED_LSE_C_FLOOR` was picked from this output, well below every in-sync
clip's LSE-C; rerun it after retraining the embedded SyncNet.

    python -m pairs.scoring.sync_calibration [--conditions 12] [--seed 9100] [--size 128] [--seconds 4]
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from data_schemas.constants import FPS
from media_io.codecs import write_video
from pairs.scoring.score import clip_evidence
from syncnet.lse import SyncResult, sync_scores
from syncnet.networks import load_syncnet
from world.build import DEGRADATIONS, make_condition, render_clip


def world_sync_results(conditions: int, seed: int, size: int, seconds: float,
                       weights: Path | None = None) -> dict[str, list[SyncResult]]:
    """{variant: SyncNet results of its clips} over `conditions` world conditions."""
    net = load_syncnet(weights)
    out: dict[str, list[SyncResult]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(conditions):
            condition = make_condition(seed, index, size, seconds)
            for degradation in (None, *DEGRADATIONS):
                path = Path(tmp) / "clip.mp4"
                write_video(path, render_clip(condition, degradation, seed=seed), FPS, condition.audio)
                evidence = clip_evidence(path, FPS, True)
                result = sync_scores(net.net, net.crop, evidence.frames, evidence.fps, evidence.track.landmarks,
                                     evidence.audio)
                if result is not None:
                    out.setdefault(degradation or "in_sync", []).append(result)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", type=int, default=12)
    parser.add_argument("--seed", type=int, default=9100)  # not the training world's 2000
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--syncnet-weights", type=Path, default=None)
    args = parser.parse_args()
    results = world_sync_results(args.conditions, args.seed, args.size, args.seconds, args.syncnet_weights)
    table = Table(title=f"SyncNet on {args.conditions} world conditions (seed {args.seed}, {args.size} px, "
                        f"{args.seconds:g} s)")
    for column in ("variant", "clips", "LSE-C min", "median", "max", "at offset 0: min", "max", "LSE-D median",
                   "offsets (count)"):
        table.add_column(column)
    for variant, found in results.items():
        confidence = np.array([r.lse_c for r in found])
        at_0 = [r.lse_c_at_0 for r in found]
        offsets = ", ".join(f"{o}×{n}" for o, n in sorted(Counter(r.offset for r in found).items()))
        table.add_row(variant, str(len(found)), f"{confidence.min():.3f}", f"{np.median(confidence):.3f}",
                      f"{confidence.max():.3f}", f"{min(at_0):.3f}", f"{max(at_0):.3f}",
                      f"{np.median([r.lse_d for r in found]):.3f}", offsets)
    Console().print(table)


if __name__ == "__main__":
    main()
