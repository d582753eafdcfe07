"""`pairs export --embed-media` memory: streamed shards (ours) vs the whole split built in memory first (the old way).

A synthetic campaign of N clips of random bytes (export copies media bytes, it never decodes them), two clips per
pair, one pair per clip pair; each side exports it in its own process, so its peak memory (VmHWM) is its own.
Prints seconds, peak MiB, the media exported and the ratio, from the same run.

    python -m bench.export_memory [--clips 400] [--clip-mb 2] [--audio-kb 62.5] [--max-shard-size 500MB]
        [--streamed-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.pairs_build import peak_rss_mib
from campaign.store import Campaign, media_path
from data_schemas import Clip, Condition, PreferencePair, to_table
from data_schemas.dataset import max_shard_bytes

CLIPS_PER_CONDITION = 4


def _media(campaign: Campaign, data: bytes, suffix: str) -> tuple[str, str]:
    """(sha256, campaign path) of `data` stored as campaign media: written straight where `Campaign.add_media` puts
    it, without its copy and fsync per file, which would take most of an hour at a million clips; export only reads
    the bytes."""
    sha = hashlib.sha256(data).hexdigest()
    relative = media_path(sha, suffix)
    (campaign.root / relative).parent.mkdir(exist_ok=True)
    (campaign.root / relative).write_bytes(data)
    return sha, relative


def synthetic_campaign(root: Path, clips: int, clip_bytes: int, audio_bytes: int = 64_000,
                       seed: int = 0) -> list[PreferencePair]:
    """A campaign of `clips` random-byte clips, 4 per condition, and the pairs (0, 1), (2, 3) of each condition."""
    rng = np.random.default_rng(seed)
    campaign = Campaign.open(root, create=True)
    scratch = root / "scratch"
    scratch.mkdir()
    face = scratch / "face.png"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(face)
    reference = campaign.add_media(face)
    conditions, records, pairs = [], [], []
    for c in tqdm(range(clips // CLIPS_PER_CONDITION), desc="campaign", unit="condition", mininterval=5):
        condition = f"c{c}"
        _, audio = _media(campaign, rng.bytes(audio_bytes), ".wav")
        conditions.append(Condition(condition_id=condition, reference_image=reference, audio=audio))
        shas = []
        for k in range(CLIPS_PER_CONDITION):
            sha, path = _media(campaign, rng.bytes(clip_bytes), ".mp4")
            shas.append(sha)
            records.append(Clip(sha256=sha, condition_id=condition, media_path=path, generator="bench",
                                generator_version="0", fps=25.0, frames=50, width=64, height=64, duration=2.0,
                                has_audio=True))
        pairs += [PreferencePair(pair_id=f"p{c}-{k}", condition_id=condition, chosen=shas[k], rejected=shas[k + 1],
                                 criterion="overall", source="human", votes=3, agreement=1.0,
                                 split="heldout" if c % 5 == 0 else "train") for k in (0, 2)]
    campaign.add_rows({"conditions": conditions, "clips": records})
    return pairs


def whole_table_export(campaign: Campaign, pairs_file: Path, out: Path) -> None:
    """The old way: every row of a split, media bytes included, in Python lists, then one Arrow table."""
    import datasets
    import pyarrow.parquet as pq

    from data_schemas import conform
    from data_schemas.dataset import features
    from pairs.export import _Media, pair_rows

    pairs = conform(pq.read_table(pairs_file), PreferencePair, "pairs")
    rows = {split: list(made) for split, made in pair_rows(campaign, pairs, _Media(campaign, out, True)).items()}
    columns = features()
    datasets.DatasetDict({
        split: datasets.Dataset.from_dict({name: [r[name] for r in split_rows] for name in columns}, features=columns)
        for split, split_rows in rows.items()
    }).save_to_disk(str(out), num_shards={split: 1 for split in rows})


def _rss_anon_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def _anon_peak(samples: list[float], done: threading.Event) -> None:
    """Sample the private memory every 5 ms (the kernel keeps no peak of it): VmHWM also counts pages of the
    memory-mapped Arrow files, which the kernel drops whenever memory is short."""
    while not done.wait(0.005):
        samples[0] = max(samples[0], _rss_anon_mib())


def measure(which: str, root: Path, max_shard_size: str) -> None:
    import pyarrow.parquet as pq

    from pairs.export import export_pairs

    campaign, pairs_file, out = Campaign.open(root / "campaign"), root / "pairs.parquet", root / f"out-{which}"
    samples, done = [_rss_anon_mib()], threading.Event()
    sampler = threading.Thread(target=_anon_peak, args=(samples, done))
    sampler.start()
    started = time.perf_counter()
    if which == "streamed":
        export_pairs(campaign, pq.read_table(pairs_file), out, embed_media=True, parquet=False,
                     max_shard_size=max_shard_bytes(max_shard_size))
    else:
        whole_table_export(campaign, pairs_file, out)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    exported = sum(f.stat().st_size for f in out.rglob("*.arrow"))
    print(json.dumps({"which": which, "seconds": seconds, "peak_mib": peak_rss_mib(),
                      "anon_peak_mib": samples[0], "exported_mib": exported / 2**20,
                      "shards": len(list(out.rglob("*.arrow")))}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--clip-mb", type=float, default=2.0)
    parser.add_argument("--max-shard-size", default="500MB")
    parser.add_argument("--audio-kb", type=float, default=62.5, help="each condition's audio (random bytes)")
    parser.add_argument("--streamed-only", action="store_true",
                        help="skip the whole-table way (it holds the split in memory: ~240 GiB at a million clips)")
    parser.add_argument("--measure", choices=["streamed", "whole"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.root, args.max_shard_size)
        return
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        root = Path(tmp)
        pairs = synthetic_campaign(root / "campaign", args.clips, int(args.clip_mb * 2**20), int(args.audio_kb * 1024))
        pq.write_table(to_table(pairs, PreferencePair), root / "pairs.parquet")
        results = {}
        ways = ("streamed",) if args.streamed_only else ("streamed", "whole")
        for which in ways:
            out = subprocess.run([sys.executable, "-m", "bench.export_memory", "--measure", which, "--root", str(root),
                                  "--max-shard-size", args.max_shard_size], capture_output=True, text=True, check=True)
            results[which] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{args.clips} clips of {args.clip_mb:g} MiB, {args.audio_kb:g} KiB of audio per condition → {len(pairs)} "
          f"pairs, {results['streamed']['exported_mib']:.0f} MiB of embedded media exported")
    print(f"{'':9} {'seconds':>8} {'peak RSS MiB':>13} {'peak private MiB':>17} {'files':>6}")
    for which in ways:
        r = results[which]
        print(f"{which:9} {r['seconds']:8.2f} {r['peak_mib']:13.0f} {r['anon_peak_mib']:17.0f} {r['shards']:6}")
    if args.streamed_only:
        return
    streamed, whole = results["streamed"], results["whole"]
    print(f"peak RSS ×{streamed['peak_mib'] / whole['peak_mib']:.2f}, peak private memory "
          f"×{streamed['anon_peak_mib'] / whole['anon_peak_mib']:.2f} of the whole-table way")


if __name__ == "__main__":
    main()
