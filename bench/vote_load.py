"""Durable vote round trips under load: 32 scripted annotators through the real HTTP API.

Prints p50 / p95 latency of a vote (submit → acknowledged after fsync) and votes/s, next to a baseline
measured in the same run on the same server and client stack: a no-op API call. The ratio is what a
durable, deduplicated vote costs over Gradio's own round trip.

    python bench/vote_load.py [--annotators 32] [--votes 25]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import gradio as gr
from gradio_client import Client

from annotate.server import ServeOptions, build_app
from annotate.simulate import Preference, simulate, simulated_accounts
from tests.annotate.conftest import make_campaign


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def noop_latencies(url: str, accounts: list[tuple[str, str]], calls: int) -> tuple[list[float], float]:
    latencies, lock = [], threading.Lock()

    def run(name: str, password: str) -> None:
        client = Client(url, auth=(name, password), verbose=False)
        for _ in range(calls):
            started = time.perf_counter()
            client.predict(api_name="/noop")
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=account) for account in accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--votes", type=int, default=25, help="votes per annotator")
    parser.add_argument("--port", type=int, default=7891)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vote-load-"))
    clips = 2
    while clips * (clips - 1) // 2 < args.votes:
        clips += 1
    campaign = make_campaign(folder / "campaign", {"load": [None] * clips})
    blocks, service = build_app(campaign, ServeOptions(gold_rate=0.0, overlap=args.annotators))
    with blocks:
        gr.api(lambda: "ok", api_name="noop", concurrency_limit=None)
    blocks.queue(default_concurrency_limit=None)
    url = f"http://127.0.0.1:{args.port}/"
    from annotate.users import authenticate

    blocks.launch(server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=True, quiet=True,
                  auth=lambda u, p: authenticate(campaign, u, p) is not None, ssr_mode=False)
    try:
        accounts = simulated_accounts(campaign, args.annotators)
        baseline, baseline_wall = noop_latencies(url, accounts, args.votes)
        started = time.perf_counter()
        result = simulate(url, campaign, args.annotators, args.votes, Preference(), seed=0)
        wall = time.perf_counter() - started
    finally:
        blocks.close()
        service.close()
    if result.errors:
        raise SystemExit(f"{len(result.errors)} errors, first: {result.errors[0]}")
    rows = [
        ("no-op API call (baseline)", baseline, len(baseline) / baseline_wall),
        ("durable vote", result.latencies, result.votes / wall),
    ]
    print(f"{args.annotators} concurrent annotators, {args.votes} votes each, {campaign.table('votes').num_rows // 4} "
          f"votes stored")
    print(f"{'':28} {'p50 ms':>8} {'p95 ms':>8} {'per s':>8}")
    for name, latencies, rate in rows:
        print(f"{name:28} {1000 * statistics.median(latencies):8.1f} {1000 * percentile(latencies, 0.95):8.1f} "
              f"{rate:8.1f}")
    print(f"vote / baseline: p95 ×{percentile(result.latencies, 0.95) / percentile(baseline, 0.95):.2f}, "
          f"throughput ×{(result.votes / wall) / (len(baseline) / baseline_wall):.2f}")


if __name__ == "__main__":
    main()
