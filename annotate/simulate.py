"""Scripted annotators that vote through the real JSON API, preferring a chosen auto-score with noise.

Used by tests, benchmarks and the demo. A simulated annotator answers every criterion with the clip
whose score (`scorer/metric`) is better, flipped with probability `noise`; a tie when the scores are
within `tie_margin`. Clips without that score get a random preference (there is nothing to follow). With
`marks`, each vote also marks where the clip voted against fails lip sync (annotate/simulated_marks.py).
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from dataclasses import dataclass, field

import httpx

from annotate.simulated_marks import loser_marks, sync_by_second
from annotate.users import add_annotator
from campaign.store import Campaign
from pairs.scoring.counted_scores import clip_score_lookup


@dataclass(frozen=True)
class Preference:
    """Which auto-score the scripted annotators follow, and how noisily."""

    score: str = "sync/lse_c"  # scorer/metric: SyncNet confidence, the lip-sync metric papers report
    higher_is_better: bool = True
    noise: float = 0.2  # probability of choosing the other clip
    tie_margin: float = 0.0
    marks: bool = False  # also mark where the clip voted against fails lip sync (annotate.simulated_marks)


@dataclass
class SimulationResult:
    """Votes acknowledged, and the wall-clock latency of each durable vote round trip."""

    votes: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def simulated_accounts(campaign: Campaign, count: int) -> list[tuple[str, str]]:
    """Create (or reset) `count` accounts sim-01 … with fresh random passwords."""
    accounts = []
    for i in range(1, count + 1):
        name, password = f"sim-{i:02d}", secrets.token_hex(12)
        add_annotator(campaign, name, password)
        accounts.append((name, password))
    return accounts


def choose(left: float | None, right: float | None, preference: Preference, rng: random.Random) -> str:
    """left / right / tie for one criterion."""
    if left is None or right is None:
        better = rng.choice(["left", "right"])
    elif abs(left - right) <= preference.tie_margin:
        return "tie"
    else:
        left_wins = (left > right) == preference.higher_is_better
        better = "left" if left_wins else "right"
    if rng.random() < preference.noise:
        better = "right" if better == "left" else "left"
    return better


def simulate(url: str, campaign: Campaign, annotators: int, votes_each: int, preference: Preference,
             seed: int = 0) -> SimulationResult:
    """Run `annotators` threads, each voting up to `votes_each` times (or until nothing is left), after the
    practice round when the task asks one."""
    scores = clip_score_lookup(campaign, preference.score)
    by_second = sync_by_second(campaign) if preference.marks else {}
    result = SimulationResult()
    lock = threading.Lock()

    def annotate(name: str, password: str, index: int) -> None:
        rng = random.Random(f"{seed}:{index}")
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                login = client.post("api/login", json={"username": name, "password": password})
                login.raise_for_status()
                client.headers["Authorization"] = f"Bearer {login.json()['token']}"
                item = client.get("api/next_item").raise_for_status().json()
                voted = 0
                while voted < votes_each and not item["done"]:
                    practice = item["practice"]  # answered like any item, but not a vote
                    answer = choose(scores.get(item["left"]["clip"]), scores.get(item["right"]["clip"]), preference,
                                    rng)
                    body = {"showing_id": item["showing_id"], "request_id": secrets.token_hex(8),
                            "answers": {criterion: answer for criterion in item["criteria"]},
                            "marks": loser_marks(item, answer, by_second) if preference.marks else None}
                    started = time.perf_counter()
                    item = client.post("api/submit", json=body).raise_for_status().json()["next"]
                    if item is None:  # stored, but the next item could not be given then: ask for it
                        item = client.get("api/next_item").raise_for_status().json()
                    if practice:
                        continue
                    voted += 1
                    with lock:
                        result.latencies.append(time.perf_counter() - started)
                        result.votes += 1
        except Exception as exc:  # noqa: BLE001 - reported to the caller, not swallowed
            with lock:
                result.errors.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=annotate, args=(name, password, i))
               for i, (name, password) in enumerate(simulated_accounts(campaign, annotators))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result
