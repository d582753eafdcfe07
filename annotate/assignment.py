"""Who sees what next: each regular item goes to `overlap` distinct annotators, nobody sees an item twice,
work is spread across conditions, and gold items are mixed in at `gold_rate`."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict

from campaign.items import Item


def _spread_order(items: list[Item]) -> dict[str, int]:
    """Rank items round-robin over conditions, so consecutive items come from different conditions."""
    by_condition: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_condition[item.condition_id].append(item)
    rank, depth = {}, 0
    queues = [by_condition[c] for c in sorted(by_condition)]
    while len(rank) < len(items):
        for queue in queues:
            if depth < len(queue):
                rank[queue[depth].item_id] = len(rank)
        depth += 1
    return rank


class Assigner:
    """The state of the assignment: who finished, who skipped, what is being shown right now."""

    def __init__(self, items: list[Item], overlap: int, gold_rate: float, seed: int = 0) -> None:
        self.items = {item.item_id: item for item in items}
        self.regular = [item for item in items if not item.is_gold]
        self.gold = [item for item in items if item.is_gold]
        self.overlap, self.gold_rate, self.seed = overlap, gold_rate, seed
        self.rank = _spread_order(self.regular)
        self.answered: dict[str, set[str]] = defaultdict(set)  # item → annotators whose answer counts
        self.seen: dict[str, set[str]] = defaultdict(set)  # annotator → items answered or skipped
        self.showing: dict[str, set[str]] = defaultdict(set)  # item → annotators it is shown to now
        self._rng: dict[str, random.Random] = {}

    def record(self, annotator: str, item_id: str, skipped: bool) -> None:
        """An annotator finished an item (a skip frees the item for someone else)."""
        self.seen[annotator].add(item_id)
        self.showing[item_id].discard(annotator)
        if not skipped:
            self.answered[item_id].add(annotator)

    def release(self, annotator: str, item_id: str) -> None:
        """An open showing was abandoned (the annotator moved on without answering)."""
        self.showing[item_id].discard(annotator)

    def _load(self, item_id: str, annotator: str) -> int:
        return len(self.answered[item_id]) + len(self.showing[item_id] - {annotator})

    def eligible(self, annotator: str) -> list[Item]:
        """Regular items this annotator may still get now."""
        seen = self.seen[annotator]
        return [i for i in self.regular if i.item_id not in seen and self._load(i.item_id, annotator) < self.overlap]

    def next_item(self, annotator: str) -> Item | None:
        """The next item for `annotator`, marked as being shown; None when nothing is left for them."""
        rng = self._rng.setdefault(annotator, random.Random(f"{self.seed}:{annotator}"))
        unseen_gold = [g for g in self.gold if g.item_id not in self.seen[annotator]
                       and annotator not in self.showing[g.item_id]]
        if unseen_gold and rng.random() < self.gold_rate:
            item = rng.choice(unseen_gold)
        else:
            candidates = self.eligible(annotator)
            if not candidates:
                return None
            per_condition: dict[str, int] = defaultdict(int)
            for seen_id in self.seen[annotator]:
                per_condition[self.items[seen_id].condition_id] += 1
            offset = _offset(annotator, len(self.rank))
            item = min(candidates, key=lambda i: (self._load(i.item_id, annotator), per_condition[i.condition_id],
                                                  (self.rank[i.item_id] + offset) % len(self.rank)))
        self.showing[item.item_id].add(annotator)
        return item

    def progress(self, annotator: str) -> tuple[int, int]:
        """(items this annotator finished, items finished + still available to them)."""
        done = len(self.seen[annotator])
        return done, done + len(self.eligible(annotator))

    def total_progress(self) -> tuple[int, int]:
        """(answers collected towards overlap, answers the campaign needs) over regular items."""
        collected = sum(min(len(self.answered[i.item_id]), self.overlap) for i in self.regular)
        return collected, len(self.regular) * self.overlap


def _offset(annotator: str, n: int) -> int:
    # Annotators walk the same spread order from different starting points, so they do not all pile
    # onto the first condition.
    return int(hashlib.sha1(annotator.encode()).hexdigest()[:8], 16) % max(n, 1)
