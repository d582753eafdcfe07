"""Votes → pairs at scale: ours (SQL over Arrow) vs a straightforward pandas groupby of the same rule.

1,000,000 synthetic votes: 10,000 conditions × 5 pairs × 5 annotators × 4 criteria, written once to
Parquet. Each side runs in its own process that reads that file and decides every (pair, criterion), so
its peak memory (max RSS) is its own. Prints seconds, peak MiB and the ratios.

    python -m bench.pairs_build [--conditions 10000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CHOICES = np.array(["a", "b", "tie", "both_bad", "skip"])


def synthetic_votes(conditions: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    pairs, annotators, criteria = 5, 5, 4
    n = conditions * pairs * annotators * criteria
    condition = np.repeat(np.arange(conditions), pairs * annotators * criteria)
    pair = np.tile(np.repeat(np.arange(pairs), annotators * criteria), conditions)
    annotator = np.tile(np.repeat(np.arange(annotators), criteria), conditions * pairs)
    criterion = np.tile(np.arange(criteria), conditions * pairs * annotators)
    choice = CHOICES[rng.choice(5, n, p=[0.45, 0.3, 0.12, 0.08, 0.05])]
    names = np.array(["lip_sync", "expression", "motion", "overall"])
    return pa.table({
        "condition_id": pa.array(np.char.add("c", condition.astype(str))),
        "clip_a": pa.array(np.char.add(np.char.add("c", condition.astype(str)), np.char.add("-a", pair.astype(str)))),
        "clip_b": pa.array(np.char.add(np.char.add("c", condition.astype(str)), np.char.add("-b", pair.astype(str)))),
        "criterion": pa.array(names[criterion]),
        "annotator": pa.array(np.char.add("ann", annotator.astype(str))),
        "choice": pa.array(choice),
    })


def ours(votes: pa.Table) -> int:
    from pairs.preferences.aggregate import vote_decisions

    decided = vote_decisions(votes)
    return int(decided.filter(decided["winner"].is_valid()).num_rows)


def pandas_baseline(votes: pa.Table) -> int:
    """The same rule (ties dropped, both-bad and skips never win), written the obvious pandas way."""
    frame = votes.to_pandas()
    frame = frame[frame["choice"] != "skip"]
    decided = 0
    for _, group in frame.groupby(["condition_id", "clip_a", "clip_b", "criterion"]):
        counts = group["choice"].value_counts()
        a, b = counts.get("a", 0), counts.get("b", 0)
        best = max(a, b)
        if a != b and best > counts.get("tie", 0) and best > counts.get("both_bad", 0):
            decided += 1
    return decided


def peak_rss_mib() -> float:
    """This process's own peak resident memory (VmHWM; ru_maxrss would include the parent's, on Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(which: str, path: Path) -> None:
    votes = pq.read_table(path)
    started = time.perf_counter()
    decided = {"ours": ours, "pandas": pandas_baseline}[which](votes)
    seconds = time.perf_counter() - started
    peak = peak_rss_mib()
    print(json.dumps({"which": which, "seconds": seconds, "peak_mib": peak, "decided": decided,
                      "votes": votes.num_rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", type=int, default=10_000)
    parser.add_argument("--measure", choices=["ours", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--votes-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.votes_file)
        return
    votes_file = Path(tempfile.mkdtemp(prefix="pairs-bench-")) / "votes.parquet"
    pq.write_table(synthetic_votes(args.conditions), votes_file)
    results = {}
    for which in ("ours", "pandas"):
        out = subprocess.run([sys.executable, "-m", "bench.pairs_build", "--measure", which, "--votes-file",
                              str(votes_file)], capture_output=True, text=True, check=True)
        results[which] = json.loads(out.stdout.strip().splitlines()[-1])
    if results["ours"]["decided"] != results["pandas"]["decided"]:
        raise SystemExit(f"the two disagree: {results}")
    print(f"{results['ours']['votes']:,} votes → {results['ours']['decided']:,} decided (pair, criterion) rows")
    print(f"{'':8} {'seconds':>8} {'peak MiB':>9}")
    for which in ("ours", "pandas"):
        print(f"{which:8} {results[which]['seconds']:8.2f} {results[which]['peak_mib']:9.0f}")
    print(f"speed-up ×{results['pandas']['seconds'] / results['ours']['seconds']:.1f}, "
          f"memory ×{results['ours']['peak_mib'] / results['pandas']['peak_mib']:.2f} of pandas")


if __name__ == "__main__":
    main()
