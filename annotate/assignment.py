"""Who sees what next: a new annotator first practises on `practice` gold items, each regular item goes to
`overlap` distinct annotators, nobody sees an item twice, and gold items are mixed in at `gold_rate`. Which
regular item comes next is the task's `assign`: round-robin spreads work evenly across conditions; active asks
the pair whose vote is expected to tell the most about the candidates' order (annotate/preference_posterior.py)."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Mapping

from annotate.preference_posterior import PreferencePosteriors, prior_scores
from campaign.items import Item
from campaign.store import Campaign
from data_schemas import AnnotationTask


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
    """Round-robin assignment, and the state every assignment keeps: who finished, who skipped, what is shown now."""

    def __init__(self, items: list[Item], overlap: int, gold_rate: float, seed: int = 0, practice: int = 0) -> None:
        self.items = {item.item_id: item for item in items}
        self.regular = [item for item in items if not item.is_gold]
        self.gold = [item for item in items if item.is_gold]
        self.overlap, self.gold_rate, self.seed = overlap, gold_rate, seed
        self.practice = min(practice, len(self.gold))  # gold items in a practice round: none without gold
        self.practiced: dict[str, set[str]] = defaultdict(set)  # annotator → gold items answered in practice
        self.rank = _spread_order(self.regular)
        self.answered: dict[str, set[str]] = defaultdict(set)  # item → annotators whose answer counts
        self.seen: dict[str, set[str]] = defaultdict(set)  # annotator → items answered or skipped
        self.showing: dict[str, set[str]] = defaultdict(set)  # item → annotators it is shown to now
        self._rng: dict[str, random.Random] = {}

    def record(self, annotator: str, item_id: str, skipped: bool,
               choices: Mapping[str, str | None] | None = None) -> None:
        """An annotator finished an item (a skip frees the item for someone else); `choices` are the stored
        answers per criterion (a / b / tie / both_bad), which only active assignment learns from."""
        self.seen[annotator].add(item_id)
        self.showing[item_id].discard(annotator)
        if not skipped:
            self.answered[item_id].add(annotator)

    def record_practice(self, annotator: str, item_id: str) -> None:
        """An annotator answered a gold item in practice: it counts nowhere and never comes back to them as gold."""
        self.practiced[annotator].add(item_id)
        self.showing[item_id].discard(annotator)

    def in_practice(self, annotator: str) -> bool:
        """Whether the annotator's next item is a practice item: they have answered fewer than `practice` and
        nothing else yet (who voted before practice was asked is not sent back to practise)."""
        return len(self.practiced[annotator]) < self.practice and not self.seen[annotator]

    def reopen(self, annotator: str, item_id: str) -> None:
        """An annotator took their answer back (undo): the item is theirs again and shown to them now."""
        self.seen[annotator].discard(item_id)
        self.answered[item_id].discard(annotator)
        self.showing[item_id].add(annotator)

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
        # A gold item met in practice is no check of this annotator: they were told its answer.
        done = self.seen[annotator] | self.practiced[annotator]
        unseen_gold = [g for g in self.gold if g.item_id not in done and annotator not in self.showing[g.item_id]]
        if unseen_gold and (self.in_practice(annotator) or rng.random() < self.gold_rate):
            item = rng.choice(unseen_gold)
        else:
            candidates = self.eligible(annotator)
            if not candidates:
                return None
            item = self._choose(annotator, candidates)
        self.showing[item.item_id].add(annotator)
        return item

    def _choose(self, annotator: str, candidates: list[Item]) -> Item:
        """The regular item to show next among those the annotator may get: the least answered, from the
        condition they have seen least, in round-robin order."""
        per_condition: dict[str, int] = defaultdict(int)
        for seen_id in self.seen[annotator]:
            per_condition[self.items[seen_id].condition_id] += 1
        offset = _offset(annotator, len(self.rank))
        return min(candidates, key=lambda i: (self._load(i.item_id, annotator), per_condition[i.condition_id],
                                              (self.rank[i.item_id] + offset) % len(self.rank)))

    def rankings(self) -> list[dict]:
        """The candidates' current standing per condition and criterion; round-robin keeps no model, so none."""
        return []

    def progress(self, annotator: str) -> tuple[int, int]:
        """(items this annotator finished, items finished + still available to them)."""
        done = len(self.seen[annotator])
        return done, done + len(self.eligible(annotator))

    def total_progress(self) -> tuple[int, int]:
        """(answers collected towards overlap, answers the campaign needs) over regular items."""
        collected = sum(min(len(self.answered[i.item_id]), self.overlap) for i in self.regular)
        return collected, len(self.regular) * self.overlap


class ActiveAssigner(Assigner):
    """Active assignment: the next regular item is the pair with the highest expected information gain about
    the candidates' order under a Bradley–Terry posterior per condition and criterion, whose prior is the
    auto-scores. Overlap, no repeats and the gold rate are kept exactly as in round-robin."""

    def __init__(self, items: list[Item], overlap: int, gold_rate: float, criteria: tuple[str, ...],
                 prior: Mapping[str, Mapping[str, float]], seed: int = 0, practice: int = 0) -> None:
        super().__init__(items, overlap, gold_rate, seed, practice)
        clips: dict[str, set[str]] = defaultdict(set)
        self._by_condition: dict[str, list[str]] = defaultdict(list)  # condition → its items, gold included
        for item in items:
            clips[item.condition_id].update((item.clip_a, item.clip_b))
            self._by_condition[item.condition_id].append(item.item_id)
        self.posteriors = PreferencePosteriors({c: sorted(v) for c, v in clips.items()}, criteria, prior)
        self._choices: dict[tuple[str, str], dict[str, str | None]] = {}  # (annotator, item) → answers counted
        self._gain: dict[str, float] = {}  # item → expected information, until a vote changes its condition

    def record(self, annotator: str, item_id: str, skipped: bool,
               choices: Mapping[str, str | None] | None = None) -> None:
        """As round-robin, and a vote's answers (gold items' too) update the posterior of its condition."""
        super().record(annotator, item_id, skipped, choices)
        if choices and not skipped:
            item = self.items[item_id]
            self.posteriors.add(item.condition_id, item.clip_a, item.clip_b, choices)
            self._choices[annotator, item_id] = dict(choices)
            self._forget_gains(item.condition_id)

    def reopen(self, annotator: str, item_id: str) -> None:
        """As round-robin, and the answer taken back no longer counts in the posterior."""
        super().reopen(annotator, item_id)
        choices = self._choices.pop((annotator, item_id), None)
        if choices:
            item = self.items[item_id]
            self.posteriors.remove(item.condition_id, item.clip_a, item.clip_b, choices)
            self._forget_gains(item.condition_id)

    def _forget_gains(self, condition: str) -> None:
        for other in self._by_condition[condition]:
            self._gain.pop(other, None)

    def _choose(self, annotator: str, candidates: list[Item]) -> Item:
        """The most informative eligible pair. A pair already on someone else's screen counts for less,
        since its answer is coming and the posterior does not know it yet; ties go to round-robin order."""
        offset = _offset(annotator, len(self.rank))

        def value(item: Item) -> tuple[float, int]:
            gain = self._gain.get(item.item_id)
            if gain is None:
                gain = self._gain[item.item_id] = self.posteriors.pair_information(item.condition_id, item.clip_a,
                                                                                   item.clip_b)
            return -gain / (1 + len(self.showing[item.item_id])), (self.rank[item.item_id] + offset) % len(self.rank)
        return min(candidates, key=value)

    def rankings(self) -> list[dict]:
        """Per condition, criterion and clip: rank (1 = best), strength mean and sd (logits), prior, votes."""
        return self.posteriors.rankings()


def assigner_for(task: AnnotationTask, items: list[Item], campaign: Campaign, seed: int = 0) -> Assigner:
    """The assigner the task asks for (`assign`: round-robin or active, whose prior is the campaign's auto-scores)."""
    if task.assign == "active":
        criteria = tuple(task.criteria)
        return ActiveAssigner(items, task.overlap, task.gold_rate, criteria, prior_scores(campaign, criteria), seed,
                              task.practice)
    return Assigner(items, task.overlap, task.gold_rate, seed, task.practice)


def _offset(annotator: str, n: int) -> int:
    # Annotators walk the same spread order from different starting points, so they do not all pile
    # onto the first condition.
    return int(hashlib.sha1(annotator.encode()).hexdigest()[:8], 16) % max(n, 1)
