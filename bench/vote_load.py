"""Durable vote round trips under load: scripted annotators through the real JSON API.

Prints p50 / p95 latency of a vote (submit → acknowledged after fsync) and votes/s, next to a baseline
measured in the same run against the same server with the same HTTP client: an unauthenticated request
that the API answers 401 (routing, auth check, response: the stack's floor). The ratio is what a
durable, deduplicated vote costs above that floor.

    python -m bench.vote_load [--annotators 32] [--votes 25]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from annotate.simulate import Preference, simulate
from bench.records_campaign import make_campaign


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def floor_latencies(url: str, clients: int, calls: int) -> tuple[list[float], float]:
    latencies, lock = [], threading.Lock()

    def run() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(calls):
                started = time.perf_counter()
                assert client.get("api/next_item").status_code == 401
                with lock:
                    latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - started


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_up(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "api/next_item").status_code == 401:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--votes", type=int, default=25, help="votes per annotator")
    args = parser.parse_args()
    clips = 2
    while clips * (clips - 1) // 2 < args.votes:
        clips += 1
    campaign = make_campaign(Path(tempfile.mkdtemp(prefix="vote-load-")) / "campaign", {"load": [None] * clips})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The server runs in its own process, as in use: it must not share a GIL with the 32 clients.
    server = subprocess.Popen([str(Path(sys.executable).parent / "annotate"), "serve", "--campaign",
                               str(campaign.root), "--port", str(port), "--gold-rate", "0", "--overlap",
                               str(args.annotators)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url)
        floor, floor_wall = floor_latencies(url, args.annotators, args.votes)
        cpu_before = process_cpu_seconds(server.pid)
        started = time.perf_counter()
        result = simulate(url, campaign, args.annotators, args.votes, Preference(), seed=0)
        wall = time.perf_counter() - started
        server_cpu = process_cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)
    if result.errors:
        raise SystemExit(f"{len(result.errors)} errors, first: {result.errors[0]}")
    stored = campaign.table("votes").num_rows // 4
    print(f"{args.annotators} concurrent annotators × {args.votes} votes; {stored} votes stored (fsynced)")
    print(f"{'':34} {'p50 ms':>8} {'p95 ms':>8} {'per s':>8}")
    for name, latencies, rate in (("401 round trip (baseline)", floor, len(floor) / floor_wall),
                                  ("durable vote", result.latencies, result.votes / wall)):
        print(f"{name:34} {1000 * statistics.median(latencies):8.1f} {1000 * percentile(latencies, 0.95):8.1f} "
              f"{rate:8.1f}")
    print(f"vote / baseline: p95 ×{percentile(result.latencies, 0.95) / percentile(floor, 0.95):.2f}; "
          f"each vote's response carries the next item")
    per_vote = server_cpu / result.votes  # includes the logins
    print(f"server CPU per vote {1000 * per_vote:.2f} ms (the clients used the rest of the 2 cores): "
          f"{2 / per_vote:.0f} votes/s of server capacity on 2 cores")


if __name__ == "__main__":
    main()
