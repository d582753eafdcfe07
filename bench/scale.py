"""The store at scale: `pairs build`, `pairs summary` and `pairs stats` on 1 M clips and 10 M votes, how long
`annotate serve` takes to start on them (replaying every vote), republishing a score batch, and `pairs score` on 2
processes against 1, each figure beside its baseline from the same run.

The synthetic campaign is written straight in the store's format (catalog and partitions through
`Campaign.add_tables`, the votes journal as sealed segments with their Parquet twins plus a live tail),
not by 10 M appends. Baselines: the same commands on a copy whose votes journal never rolled over (one
JSON-lines file: what every campaign had before segments); republishing the whole scores table (what every
write did before partitions); `pairs score` in one process. Each command runs as the real CLI in its own
process, so its peak memory (VmHWM) is its own.

    python -m bench.scale [--clips 1000000] [--votes 10000000] [--score-clips 400] [--folder F --keep | --reuse]
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.pairs_build import CHOICES, peak_rss_mib
from campaign.journal import SEGMENT_BYTES, JournalWriter, sealed_segments, segment_folder
from campaign.store import Campaign
from data_schemas import CRITERIA, Clip, Condition, Retraction, Score, Vote, arrow_schema, from_table, to_table

CLIPS_PER_CONDITION = 4
ANNOTATORS = 400
HEX = np.frombuffer(b"0123456789abcdef", dtype="S1")
# The six clip pairs (i < j) of a condition's four candidates.
PAIRS = np.array([(i, j) for i in range(CLIPS_PER_CONDITION) for j in range(i + 1, CLIPS_PER_CONDITION)])


@dataclass(frozen=True)
class Synthetic:
    """A synthetic campaign and what went into it."""

    root: Path
    clips: int
    votes: int
    segments: int
    live_votes: int
    retracted_showings: int


def hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """n random 64-digit hex strings (sha256-like)."""
    digits = HEX[rng.integers(0, 16, (n, 64))]
    return pa.array(np.ascontiguousarray(digits).view("S64").ravel()).cast(pa.string())


def numbered(prefix: str, values: np.ndarray) -> pa.Array:
    """prefix + zero-padded number, e.g. c0000042."""
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(pa.array(values).cast(pa.string()), 7, "0"), "")


def record_table(record_type: type, n: int, columns: dict) -> pa.Table:
    """A table of `record_type` with n rows: the given columns (arrays or constants), nulls elsewhere."""
    schema = arrow_schema(record_type)
    arrays = []
    for field in schema:
        value = columns.get(field.name)
        if value is None:
            arrays.append(pa.nulls(n, field.type))
        elif isinstance(value, (pa.Array, pa.ChunkedArray)):
            arrays.append(value.cast(field.type))
        else:
            arrays.append(pa.repeat(pa.scalar(value, field.type), n) if n else pa.array([], field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def catalog_tables(clips: int, seed: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(conditions, clips, scores): four candidates per condition, two sync scores per clip."""
    rng = np.random.default_rng(seed)
    conditions = clips // CLIPS_PER_CONDITION
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    condition_ids = numbered("c", np.arange(conditions))
    media = pc.binary_join_element_wise("media/00/", hex_ids(rng, conditions), "")
    condition_table = record_table(Condition, conditions, {
        "condition_id": condition_ids, "reference_image": pc.binary_join_element_wise(media, ".png", ""),
        "audio": pc.binary_join_element_wise(media, ".wav", ""), "created_at": now})
    n = conditions * CLIPS_PER_CONDITION
    sha = hex_ids(rng, n)
    clip_table = record_table(Clip, n, {
        "sha256": sha, "condition_id": condition_ids.take(np.repeat(np.arange(conditions), CLIPS_PER_CONDITION)),
        "media_path": pc.binary_join_element_wise("media/", pc.utf8_slice_codeunits(sha, 0, 2), "/", sha, ".mp4", ""),
        "generator": "synthetic", "generator_version": "1", "fps": 25.0, "frames": 100, "width": 256, "height": 256,
        "duration": 4.0, "has_audio": True, "seed": pa.array(np.tile(np.arange(CLIPS_PER_CONDITION), conditions)),
        "params": "{}", "created_at": now})
    metrics = pa.array(np.tile(["lse_c", "lse_d"], n))
    score_table = record_table(Score, 2 * n, {
        "clip": sha.take(np.repeat(np.arange(n), 2)), "scorer": "sync", "scorer_version": "synthetic-1",
        "metric": metrics, "value": pa.array(rng.normal(6.0, 2.0, 2 * n)), "details": "{}", "created_at": now})
    return condition_table, clip_table, score_table


def vote_table(clip_table: pa.Table, votes: int, seed: int) -> pa.Table:
    """`votes` A/B votes: showings of random clip pairs of random conditions, each judged on every criterion."""
    rng = np.random.default_rng(seed + 1)
    conditions = clip_table.num_rows // CLIPS_PER_CONDITION
    showings = -(-votes // len(CRITERIA))
    condition = rng.integers(0, conditions, showings)
    pair = PAIRS[rng.integers(0, len(PAIRS), showings)]
    first = clip_table["sha256"].take(condition * CLIPS_PER_CONDITION + pair[:, 0])
    second = clip_table["sha256"].take(condition * CLIPS_PER_CONDITION + pair[:, 1])
    smaller = pc.less(first, second)
    clip_a, clip_b = pc.if_else(smaller, first, second), pc.if_else(smaller, second, first)
    showing = np.repeat(np.arange(showings), len(CRITERIA))[:votes]
    per_vote = lambda column: column.take(showing)  # noqa: E731 - one showing's columns repeat per criterion
    start = np.datetime64("2026-01-01T00:00:00", "us").astype(np.int64)
    return record_table(Vote, votes, {
        "showing_id": per_vote(numbered("s", np.arange(showings))), "request_id": numbered("r", np.arange(votes)),
        "annotator": per_vote(numbered("ann", rng.integers(0, ANNOTATORS, showings))),
        "condition_id": per_vote(clip_table["condition_id"].take(condition * CLIPS_PER_CONDITION)),
        "clip_a": per_vote(clip_a), "clip_b": per_vote(clip_b),
        "left": per_vote(pa.array(np.array(["a", "b"])[rng.integers(0, 2, showings)])),
        "criterion": pa.array(np.tile(CRITERIA, showings)[:votes]),
        "choice": pa.array(CHOICES[rng.choice(5, votes, p=[0.45, 0.3, 0.12, 0.08, 0.05])]),
        "is_gold": False, "latency_ms": pa.array(rng.integers(2000, 20000, votes)),
        "created_at": pa.array(start + showing * 1000, pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))})


def write_jsonl(table: pa.Table, path: Path) -> None:
    """Records as the journal writes them: one JSON object per line, timestamps in ISO 8601."""
    con = duckdb.connect()
    con.register("records", table)
    columns = ", ".join(f"strftime(\"{name}\", '%Y-%m-%dT%H:%M:%S.%f+00:00') AS \"{name}\""
                        if pa.types.is_timestamp(table.schema.field(name).type) else f'"{name}"'
                        for name in table.column_names)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"COPY (SELECT {columns} FROM records) TO '{path}' (FORMAT json)")
    os.chmod(path, 0o600)


def journal_segments(root: Path, name: str, table: pa.Table, segment_rows: int) -> tuple[int, int]:
    """Write a journal as sealed segments (JSON lines + Parquet twin) of `segment_rows` and a live tail; returns
    (sealed segments, live records)."""
    live = Campaign(root).journal_path(name)
    folder = segment_folder(live)
    folder.mkdir(mode=0o700, exist_ok=True)
    sealed = table.num_rows // segment_rows
    for i in range(sealed):
        rows = table.slice(i * segment_rows, segment_rows)
        pq.write_table(rows, folder / f"segment-{i + 1:06d}.parquet")
        os.chmod(folder / f"segment-{i + 1:06d}.parquet", 0o600)
        write_jsonl(rows, folder / f"segment-{i + 1:06d}.jsonl")
    tail = table.slice(sealed * segment_rows)
    write_jsonl(tail, live)
    return sealed, tail.num_rows


def synthetic_campaign(root: Path, clips: int, votes: int, seed: int = 0,
                       segment_bytes: int = SEGMENT_BYTES) -> Synthetic:
    """A campaign of `clips` clips (4 per condition, 2 scores each) and `votes` votes, the showings of the first
    1‰ of them retracted."""
    campaign = Campaign.open(root, create=True)
    conditions, clip_table, scores = catalog_tables(clips, seed)
    campaign.add_tables([{"conditions": conditions, "clips": clip_table, "scores": scores}])
    table = vote_table(clip_table, votes, seed)
    line_bytes = max(1, len(json.dumps(table.slice(0, 1).to_pylist()[0], default=str)) + 1) if votes else 1
    segments, live = journal_segments(root, "votes", table, max(1, segment_bytes // line_bytes))
    retracted = table.slice(0, max(len(CRITERIA), votes // 1000)).select(["showing_id", "annotator"]).group_by(
        ["showing_id", "annotator"]).aggregate([])
    write_jsonl(record_table(Retraction, retracted.num_rows, {
        "showing_id": retracted["showing_id"], "annotator": retracted["annotator"], "journal": "votes",
        "created_at": datetime(2026, 1, 2, tzinfo=timezone.utc)}), campaign.journal_path("retractions"))
    return Synthetic(root, clip_table.num_rows, votes, segments, live, retracted.num_rows)


def single_journal_copy(synthetic: Synthetic, dest: Path) -> Path:
    """The same campaign with its votes in one JSON-lines file (never rolled over); other files are links."""
    dest.mkdir(mode=0o700)
    for entry in synthetic.root.iterdir():
        if entry.name != "journal":
            (dest / entry.name).symlink_to(entry)
    (dest / "journal").mkdir(mode=0o700)
    for entry in (synthetic.root / "journal").iterdir():
        if entry.is_file() and entry.name != "votes.jsonl":
            (dest / "journal" / entry.name).symlink_to(entry)
    live = Campaign(synthetic.root).journal_path("votes")
    with open(dest / "journal" / "votes.jsonl", "wb") as out:
        for part in [*sorted(segment_folder(live).glob("segment-*.jsonl")), live]:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 24)
    return dest


def run_measured(args: list[str]) -> dict:
    """Run `pairs ARGS` or `annotate ARGS` (args[0] names the CLI) in its own process: its wall and CPU seconds, its
    own peak resident memory (VmHWM, read by the process itself as it exits: a forked child's ru_maxrss would count
    the parent's pages) and its output."""
    with tempfile.NamedTemporaryFile(suffix=".json") as peak_file:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "bench.scale", "--peak-file", peak_file.name, "--", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "120"})
        output = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{' '.join(args)} failed:\n{output[-3000:]}")
        peak = json.loads(Path(peak_file.name).read_text())["peak_mib"]
    return {"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_mib": peak, "output": output}


def run_cli_reporting_peak(peak_file: Path, args: list[str]) -> None:
    """Run the `pairs` or `annotate` CLI (args[0]) in this process and write its peak memory to `peak_file` as it
    exits."""
    if args[0] not in ("pairs", "annotate"):
        raise SystemExit(f"bench.scale measures the pairs and annotate commands, not {args[0]}")
    cli_main = importlib.import_module(f"{args[0]}.cli").main

    atexit.register(lambda: peak_file.write_text(json.dumps({"peak_mib": peak_rss_mib()})))
    sys.argv = args
    cli_main()


def free_port() -> int:
    """A free local port: other runs on this machine may listen too."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pairs_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pairs.cli", *args]


def republish_seconds(campaign: Campaign, seed: int) -> dict[str, float]:
    """Seconds to store one score batch (64 rows of 32 clips), and to republish the whole scores table."""
    clips = campaign.table("clips")["sha256"]
    rng = np.random.default_rng(seed + 2)
    chosen = clips.take(rng.choice(len(clips), min(32, len(clips)), replace=False))
    batch = to_table([Score(clip=c, scorer="sync", scorer_version="synthetic-2", metric=m, value=1.0)
                      for c in chosen.to_pylist() for m in ("lse_c", "lse_d")], Score)
    started = time.perf_counter()
    campaign.add_tables([{"scores": batch}])
    partitioned = time.perf_counter() - started
    started = time.perf_counter()
    with campaign.write("scores"):
        pass
    return {"partitioned": partitioned, "whole": time.perf_counter() - started}


def append_latency(folder: Path, clip_table: pa.Table, seed: int,
                   segment_bytes: int = SEGMENT_BYTES) -> dict[str, float]:
    """Seconds per append of one showing's votes (one per criterion) to a new votes journal, the annotator's wait
    for an acknowledgement, until two segments are sealed: the median append, and the slowest (a seal: the full
    segment parsed, its Parquet twin written and fsynced, a new live file)."""
    votes = from_table(vote_table(clip_table, 2 * segment_bytes // 320, seed), Vote)  # ~330 bytes a vote
    path = Path(tempfile.mkdtemp(prefix="journal-", dir=folder)) / "votes.jsonl"
    seconds = []
    with JournalWriter(path, Vote, segment_bytes) as writer:
        for start in range(0, len(votes), len(CRITERIA)):
            began = time.perf_counter()
            writer.append(votes[start:start + len(CRITERIA)])
            seconds.append(time.perf_counter() - began)
    seals = len(sealed_segments(path))
    shutil.rmtree(path.parent)
    return {"median": float(np.median(seconds)), "max": max(seconds), "appends": len(seconds), "seals": seals}


SCORE_RUNS = ("1 process", "1 process, 1 thread", "2 processes")


def score_speedup(folder: Path, clips: int) -> dict[str, dict[str, float]]:
    """`pairs score` over the same embedded-world clips in 1 process (torch's own threads, as a user runs it; and
    with one thread, which is faster here: SyncNet's threads spin while FaceMesh works) and under accelerate launch
    with 2 (one thread each, accelerate's default): seconds of the run, and of the same command again with every
    clip cached (what starting the processes costs), and the CPU seconds of each."""
    folder = Path(tempfile.mkdtemp(prefix="score-", dir=folder))
    world = folder / "world"
    subprocess.run(pairs_command("world", "--out", str(world), "--conditions", str(max(1, clips // 5)),
                                 "--size", "64", "--seconds", "1.0"), check=True, capture_output=True)
    seconds: dict[str, dict[str, float]] = {}
    for index, name in enumerate(SCORE_RUNS):
        campaign = folder / f"score-{index}"
        subprocess.run(pairs_command("ingest", str(world / "manifest.csv"), "--campaign", str(campaign)), check=True,
                       capture_output=True)
        score = ["score", "--campaign", str(campaign), "--scorers", "sync,expression,motion"]
        env = {**os.environ, "ACCELERATE_USE_CPU": "true", **({"OMP_NUM_THREADS": "1"} if "1 thread" in name else {})}
        seconds[name] = {}
        for run in ("scoring", "cached"):
            if name != "2 processes":
                command = pairs_command(*score)
            else:
                command = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu",
                           "--num_processes", "2", "--num_machines", "1", "--main_process_port", str(free_port()),
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "pairs.cli", *score]
            started, cpu = time.perf_counter(), _children_cpu()
            subprocess.run(command, check=True, capture_output=True, env=env)
            seconds[name][run] = time.perf_counter() - started
            seconds[name][f"{run} cpu"] = _children_cpu() - cpu
    return seconds


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process of this one, so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1_000_000)
    parser.add_argument("--votes", type=int, default=10_000_000)
    parser.add_argument("--score-clips", type=int, default=400, help="Embedded-world clips to score (0: skip).")
    parser.add_argument("--folder", type=Path, help="Where to build (a temporary folder by default).")
    parser.add_argument("--keep", action="store_true", help="Keep the synthetic campaigns.")
    parser.add_argument("--reuse", action="store_true", help="Measure the campaigns --keep left in --folder.")
    parser.add_argument("--peak-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("cli_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_file:
        run_cli_reporting_peak(args.peak_file, args.cli_args)
        return
    folder = args.folder or Path(tempfile.mkdtemp(prefix="scale-bench-"))
    load = os.getloadavg()
    started = time.perf_counter()
    if args.reuse:
        synthetic = json.loads((folder / "synthetic.json").read_text())
        synthetic = Synthetic(**{**synthetic, "root": Path(synthetic["root"])})
    else:
        synthetic = synthetic_campaign(folder / "campaign", args.clips, args.votes)
        (folder / "synthetic.json").write_text(json.dumps({**synthetic.__dict__, "root": str(synthetic.root)}))
    print(f"synthetic campaign: {synthetic.clips:,} clips, {synthetic.votes:,} votes ({synthetic.segments} sealed "
          f"segments + {synthetic.live_votes:,} live), {synthetic.retracted_showings:,} retracted showings; "
          f"built in {time.perf_counter() - started:.0f} s")
    baseline = folder / "single-journal"
    if not args.reuse:
        single_journal_copy(synthetic, baseline)
    rows = []
    serve = ["annotate", "serve", "--exit-after-simulation", "--port"]  # starts, then stops
    for name, command in (("pairs build", ["pairs", "build", "--out"]), ("pairs summary", ["pairs", "summary"]),
                          ("pairs stats", ["pairs", "stats", "--json"]), ("annotate serve start", serve)):
        figures = []
        for root in (synthetic.root, baseline):
            extra = ([str(folder / f"pairs-{root.name}.parquet")] if name == "pairs build" else
                     [str(free_port())] if command is serve else [])  # a port picked just before it listens
            figures.append(run_measured([*command, *extra, "--campaign", str(root)]))
        rows.append((name, figures))
    pairs = [pq.read_table(folder / f"pairs-{name}.parquet") for name in ("campaign", "single-journal")]
    if not pairs[0].equals(pairs[1]):
        raise SystemExit("pairs build gave different pairs from segments and from one journal file")
    publish = republish_seconds(Campaign.open(synthetic.root), 0)
    appends = append_latency(folder, Campaign.open(synthetic.root).table("clips"), 0)
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print(f"{'':26} {'seconds':>8} {'CPU s':>6} {'peak MiB':>8} | {'baseline':>8} {'CPU s':>6} {'peak MiB':>8} | ratio")
    for name, (ours, base) in rows:
        print(f"{name:26} {ours['seconds']:8.2f} {ours['cpu_seconds']:6.1f} {ours['peak_mib']:8.0f} | "
              f"{base['seconds']:8.2f} {base['cpu_seconds']:6.1f} {base['peak_mib']:8.0f} | "
              f"×{base['seconds'] / ours['seconds']:.1f} faster, ×{ours['peak_mib'] / base['peak_mib']:.2f} memory "
              "(baseline: the votes in one journal file)")
    print(f"{'store a 64-score batch':26} {publish['partitioned']:8.2f} {'':6} {'':8} | {publish['whole']:8.2f} "
          f"{'':6} {'':8} | ×{publish['whole'] / publish['partitioned']:.1f} faster (baseline: republish the whole "
          "scores table)")
    print(f"{'append one showing':26} {appends['median'] * 1e3:6.2f} ms median, {appends['max'] * 1e3:.0f} ms the "
          f"slowest ({appends['appends']:,} appends, {appends['seals']} segments sealed: a seal's append is the "
          "slowest)")
    if args.score_clips:
        score = score_speedup(folder, args.score_clips)
        two = score["2 processes"]
        for name in SCORE_RUNS[:2]:
            one = score[name]
            print(f"{'pairs score, 2 processes':26} {two['scoring']:8.2f} {'':6} {'':8} | {one['scoring']:8.2f} {'':6} "
                  f"{'':8} | ×{one['scoring'] / two['scoring']:.2f} faster (baseline: {name}; {args.score_clips} "
                  f"clips); less the start-up (a run with every clip cached: {two['cached']:.1f} s vs "
                  f"{one['cached']:.1f} s) ×{(one['scoring'] - one['cached']) / (two['scoring'] - two['cached']):.2f}")
            # One process already reads the next clip while it scores this one, so it keeps more than one core
            # busy: that is the headroom two processes on two cores no longer have.
            cores = (one["scoring cpu"] - one["cached cpu"]) / (one["scoring"] - one["cached"])
            print(f"{'':26} {name} kept {cores:.2f} cores busy (CPU s / wall s, less start-up); CPU seconds in all: "
                  f"2 processes {two['scoring cpu']:.1f}, {name} {one['scoring cpu']:.1f}")
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
