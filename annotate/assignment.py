"""Who sees what next: a new annotator first practises on `practice` gold items, each regular item goes to
`overlap` distinct annotators, nobody sees an item twice, and gold items are mixed in at `gold_rate`. Which
regular item comes next is the task's `assign`: round-robin spreads work evenly across conditions; active asks
the pair whose vote is expected to correct the most pair orders of the candidates' posterior
(pairs/preferences/bradley_terry.py, kept per condition in annotate/preference_posterior.py)."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from annotate.preference_posterior import PreferencePosteriors
from campaign.items import Item
from campaign.store import Campaign
from data_schemas import AnnotationTask
from pairs.preferences.bradley_terry import prior_scores


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
        # Progress and the next pick are asked for on every page and acknowledgement: kept as counts per regular item
        # (numpy) and a running total, not walked over every item in Python under the service's lock.
        self._position = {item.item_id: k for k, item in enumerate(self.regular)}
        self._answers = np.zeros(len(self.regular), int)  # len(answered[item])
        self._shown = np.zeros(len(self.regular), int)  # len(showing[item])
        self._shown_to: dict[str, set[str]] = defaultdict(set)  # annotator → items shown to them now
        self._collected = 0  # Σ min(answers, overlap) over regular items
        self._rank_array = np.array([self.rank[item.item_id] for item in self.regular], int)
        self._condition_code = {c: k for k, c in enumerate(dict.fromkeys(item.condition_id for item in items))}
        self._condition_of = np.array([self._condition_code[item.condition_id] for item in self.regular], int)

    def record(self, annotator: str, item_id: str, skipped: bool,
               choices: Mapping[str, str | None] | None = None) -> None:
        """An annotator finished an item (a skip frees the item for someone else); `choices` are the stored
        answers per criterion (a / b / tie / both_bad), which only active assignment learns from."""
        self.seen[annotator].add(item_id)
        if not skipped:
            self.answered[item_id].add(annotator)
        self._unshow(annotator, item_id)

    def record_practice(self, annotator: str, item_id: str) -> None:
        """An annotator answered a gold item in practice: it counts nowhere and never comes back to them as gold."""
        self.practiced[annotator].add(item_id)
        self._unshow(annotator, item_id)

    def in_practice(self, annotator: str) -> bool:
        """Whether the annotator's next item is a practice item: they have answered fewer than `practice` and
        nothing else yet (who voted before practice was asked is not sent back to practise)."""
        return len(self.practiced[annotator]) < self.practice and not self.seen[annotator]

    def reopen(self, annotator: str, item_id: str) -> None:
        """An annotator took their answer back (undo): the item is theirs again and shown to them now."""
        self.seen[annotator].discard(item_id)
        self.answered[item_id].discard(annotator)
        self.show(annotator, item_id)

    def release(self, annotator: str, item_id: str) -> None:
        """An open showing was abandoned (the annotator moved on without answering)."""
        self._unshow(annotator, item_id)

    def show(self, annotator: str, item_id: str) -> None:
        """The item is on the annotator's screen now."""
        self.showing[item_id].add(annotator)
        self._shown_to[annotator].add(item_id)
        self._count(item_id)

    def _unshow(self, annotator: str, item_id: str) -> None:
        # No empty set kept per item once off every screen: a restart replays every answer through here, and a
        # long-running server shows every item (1.5 M items at 1 M clips: ~250 MB of empty sets).
        shown = self.showing.get(item_id)
        if shown is not None:
            shown.discard(annotator)
            if not shown:
                del self.showing[item_id]
        self._shown_to[annotator].discard(item_id)
        self._count(item_id)

    def _count(self, item_id: str) -> None:
        """Bring a regular item's counts and the running total in line with its sets."""
        k = self._position.get(item_id)
        if k is not None:
            answers = len(self.answered.get(item_id, ()))
            self._collected += min(answers, self.overlap) - min(int(self._answers[k]), self.overlap)
            self._answers[k], self._shown[k] = answers, len(self.showing.get(item_id, ()))

    def _available(self, annotator: str) -> tuple[np.ndarray, np.ndarray]:
        """Per regular item: its load (answers plus open showings to others), and whether this annotator may get it
        now (load under the overlap, not seen by them)."""
        load = self._answers + self._shown
        load[[self._position[i] for i in self._shown_to[annotator] if i in self._position]] -= 1
        available = load < self.overlap
        available[[self._position[i] for i in self.seen[annotator] if i in self._position]] = False
        return load, available

    def next_item(self, annotator: str) -> Item | None:
        """The next item for `annotator`, marked as being shown; None when nothing is left for them."""
        rng = self._rng.setdefault(annotator, random.Random(f"{self.seed}:{annotator}"))
        # A gold item met in practice is no check of this annotator: they were told its answer.
        done = self.seen[annotator] | self.practiced[annotator]
        unseen_gold = [g for g in self.gold
                       if g.item_id not in done and annotator not in self.showing.get(g.item_id, ())]
        if unseen_gold and (self.in_practice(annotator) or rng.random() < self.gold_rate):
            item = rng.choice(unseen_gold)
        else:
            item = self._pick(annotator)
            if item is None:
                return None
        self.show(annotator, item.item_id)
        return item

    def _pick(self, annotator: str) -> Item | None:
        """The regular item to show next among those the annotator may get: the least answered, from the
        condition they have seen least, in round-robin order; None when there is none."""
        load, available = self._available(annotator)
        if not available.any():
            return None
        candidates = np.flatnonzero(available & (load == load[available].min()))
        seen = np.bincount([self._condition_code[self.items[i].condition_id] for i in self.seen[annotator]],
                           minlength=len(self._condition_code))
        rotated = (self._rank_array[candidates] + _offset(annotator, len(self.rank))) % len(self.rank)
        return self.regular[candidates[np.lexsort((rotated, seen[self._condition_of[candidates]]))[0]]]

    def rankings(self) -> list[dict]:
        """The candidates' current standing per condition and criterion; round-robin keeps no model, so none."""
        return []

    def prepare(self) -> None:
        """Do now the work the next choice would otherwise do inside a request; round-robin has none."""

    def progress(self, annotator: str) -> tuple[int, int]:
        """(items this annotator finished, items finished + still available to them)."""
        done = len(self.seen[annotator])
        return done, done + int(self._available(annotator)[1].sum())

    def total_progress(self) -> tuple[int, int]:
        """(answers collected towards overlap, answers the campaign needs) over regular items."""
        return self._collected, len(self.regular) * self.overlap


class ActiveAssigner(Assigner):
    """Active assignment: the next regular item is the pair whose vote is expected to correct the most of the
    posterior's pair orders (`decision_errors_removed`), under a Bradley–Terry posterior per condition and
    criterion whose prior is the auto-scores. A pair whose order is already sure, from its own votes, the prior
    or the other pairs (transitivity), is worth almost nothing and waits; overlap, no repeats and the gold rate
    are kept exactly as in round-robin."""

    def __init__(self, items: list[Item], overlap: int, gold_rate: float, criteria: tuple[str, ...],
                 prior: Mapping[str, Mapping[str, float]], seed: int = 0, practice: int = 0) -> None:
        super().__init__(items, overlap, gold_rate, seed, practice)
        clips: dict[str, set[str]] = defaultdict(set)
        self._by_condition: dict[str, list[Item]] = defaultdict(list)  # condition → its items, gold included
        for item in items:
            clips[item.condition_id].update((item.clip_a, item.clip_b))
            self._by_condition[item.condition_id].append(item)
        self.posteriors = PreferencePosteriors({c: sorted(v) for c, v in clips.items()}, criteria, prior)
        self._choices: dict[tuple[str, str], dict[str, str | None]] = {}  # (annotator, item) → answers counted
        # Each regular pair's value (wrong orders its vote is expected to remove), kept as one array so the
        # choice sorts in numpy rather than visiting 15 000 pairs in Python; a vote makes its condition stale.
        self._values = np.zeros(len(self.regular))
        self._stale: set[str] = set(self._by_condition)

    def record(self, annotator: str, item_id: str, skipped: bool,
               choices: Mapping[str, str | None] | None = None) -> None:
        """As round-robin, and a vote's answers (gold items' too) update the posterior of its condition."""
        super().record(annotator, item_id, skipped, choices)
        if choices and not skipped:
            item = self.items[item_id]
            self.posteriors.add(item.condition_id, item.clip_a, item.clip_b, choices)
            self._choices[annotator, item_id] = dict(choices)
            self._forget_values(item.condition_id)

    def reopen(self, annotator: str, item_id: str) -> None:
        """As round-robin, and the answer taken back no longer counts in the posterior."""
        super().reopen(annotator, item_id)
        choices = self._choices.pop((annotator, item_id), None)
        if choices:
            item = self.items[item_id]
            self.posteriors.remove(item.condition_id, item.clip_a, item.clip_b, choices)
            self._forget_values(item.condition_id)

    def _forget_values(self, condition: str) -> None:
        self._stale.add(condition)

    def prepare(self) -> None:
        """Value the pairs of every condition whose posterior changed since they were last valued."""
        for condition in self._stale:  # one condition's pairs at once: one posterior, one vectorised step
            pairs = [item for item in self._by_condition[condition] if not item.is_gold]
            if pairs:
                values = self.posteriors.pair_values(condition, [(p.clip_a, p.clip_b) for p in pairs])
                # never below zero (the one-step approximation can dip under it), so the search below may stop
                self._values[[self._position[p.item_id] for p in pairs]] = np.maximum(values, 0.0)
        self._stale.clear()

    def _pick(self, annotator: str) -> Item | None:
        """The eligible pair whose vote is expected to correct the most orders; None when there is none. A pair
        already on someone else's screen counts for less, since its answer is coming and the posterior does not
        know it yet. Pairs are visited best first (ties in round-robin order) until none left can do better."""
        self.prepare()
        rotated = (self._rank_array + _offset(annotator, len(self.rank))) % max(len(self.rank), 1)
        available = self._available(annotator)[1]
        best, best_value = None, -1.0
        for k in np.lexsort((rotated, -self._values)).tolist():
            if self._values[k] <= best_value:  # discounting only lowers a value: nothing further can win
                break
            value = self._values[k] / (1 + self._shown[k])
            if available[k] and value > best_value:
                best, best_value = self.regular[k], value
        return best

    def rankings(self) -> list[dict]:
        """Per condition, criterion and clip: rank (1 = best), strength mean and sd (logits), prior, votes."""
        return self.posteriors.rankings()


def assigner_for(task: AnnotationTask, items: list[Item], campaign: Campaign, seed: int = 0) -> Assigner:
    """The assigner the task asks for (`assign`: round-robin or active, whose prior is the campaign's auto-scores)."""
    prior = prior_scores(campaign, tuple(task.criteria)) if task.assign == "active" else {}
    return task_assigner(task, items, prior, seed)


def task_assigner(task: AnnotationTask, items: list[Item], prior: Mapping[str, Mapping[str, float]],
                  seed: int = 0) -> Assigner:
    """The task's assigner over `items`; an active one starts from `prior` (criterion → clip → signed score)."""
    if task.assign == "active":
        return ActiveAssigner(items, task.overlap, task.gold_rate, tuple(task.criteria), prior, seed, task.practice)
    return Assigner(items, task.overlap, task.gold_rate, seed, task.practice)


def _offset(annotator: str, n: int) -> int:
    # Annotators walk the same spread order from different starting points, so they do not all pile
    # onto the first condition.
    return int(hashlib.sha1(annotator.encode()).hexdigest()[:8], 16) % max(n, 1)
