"""What annotators judge: clip pairs of one condition (A/B mode) or single clips (rating mode).

Gold items have a known answer: the embedded world's in-sync clip against one of its deliberately
degraded variants of the same condition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations

import pyarrow as pa

from campaign.store import Campaign

# Which criteria a degradation must lose, so its in-sync sibling is the known winner there.
GOLD_CRITERIA: dict[str, tuple[str, ...]] = {
    "shift": ("lip_sync", "overall"),
    "frozen_mouth": ("lip_sync", "expression", "overall"),
    "jitter": ("motion", "overall"),
}


@dataclass(frozen=True)
class Item:
    """One thing to judge; `clip_b` is None in rating mode. `gold` maps criterion → known answer."""

    item_id: str
    condition_id: str
    clip_a: str
    clip_b: str | None = None
    gold: dict[str, str] = field(default_factory=dict)

    @property
    def is_gold(self) -> bool:
        return bool(self.gold)


def _degradation(params: str) -> str | None:
    return json.loads(params or "{}").get("degradation")


def _clips_by_condition(campaign: Campaign) -> dict[str, list[dict]]:
    rows = campaign.connect(journals=False).execute(
        "SELECT sha256, condition_id, generator, params FROM clips ORDER BY condition_id, sha256").fetchall()
    grouped: dict[str, list[dict]] = {}
    for sha, condition, generator, params in rows:
        grouped.setdefault(condition, []).append(
            {"sha": sha, "world": generator == "world", "degradation": _degradation(params)})
    return grouped


def ab_items(campaign: Campaign, criteria: tuple[str, ...]) -> list[Item]:
    """Every unordered clip pair within each condition (A = smaller sha256); world in-sync vs degraded is gold."""
    items = []
    for condition, clips in _clips_by_condition(campaign).items():
        for a, b in combinations(clips, 2):  # sorted by sha, so a < b
            gold = _gold_answer(a, b, criteria)
            items.append(Item(f"{a['sha'][:16]}-{b['sha'][:16]}", condition, a["sha"], b["sha"], gold))
    return items


def _gold_answer(a: dict, b: dict, criteria: tuple[str, ...]) -> dict[str, str]:
    if not (a["world"] and b["world"]):
        return {}
    for winner, loser, side in ((a, b, "a"), (b, a, "b")):
        if winner["degradation"] is None and loser["degradation"] in GOLD_CRITERIA:
            return {c: side for c in GOLD_CRITERIA[loser["degradation"]] if c in criteria}
    return {}


def rating_items(campaign: Campaign) -> list[Item]:
    """Every clip, one item each (rating mode has no gold)."""
    return [Item(clip["sha"][:16], condition, clip["sha"])
            for condition, clips in _clips_by_condition(campaign).items() for clip in clips]


def gold_answers(items: list[Item]) -> pa.Table:
    """(clip_a, clip_b, criterion, answer) for every gold item's known answers."""
    rows = [(i.clip_a, i.clip_b, c, a) for i in items for c, a in i.gold.items()]
    return pa.table({k: [r[n] for r in rows] for n, k in enumerate(("clip_a", "clip_b", "criterion", "answer"))},
                    schema=pa.schema([(k, pa.string()) for k in ("clip_a", "clip_b", "criterion", "answer")]))
