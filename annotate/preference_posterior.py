"""The Bradley–Terry posteriors the active assigner keeps: the A/B outcomes seen so far per condition and
criterion, refitted per condition when new votes arrive, and the current rankings with their uncertainty for
the admin console. The fitting itself is pairs/preferences/bradley_terry.py (`pairs build --from ranking`
fits the same posterior to the counted votes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from pairs.preferences.bradley_terry import (bradley_terry_posterior, decision_errors_removed, prior_means,
                                             win_probability)


class PreferencePosteriors:
    """The Bradley–Terry posterior of every (condition, criterion), refitted lazily as votes arrive."""

    def __init__(self, clips_by_condition: Mapping[str, list[str]], criteria: tuple[str, ...],
                 prior: Mapping[str, Mapping[str, float]]) -> None:
        self.criteria = tuple(criteria)
        self.clips = {c: sorted(clips) for c, clips in clips_by_condition.items()}
        self.index = {c: {clip: i for i, clip in enumerate(clips)} for c, clips in self.clips.items()}
        self.prior = {(c, k): prior_means(clips, prior.get(k, {})) for c, clips in self.clips.items()
                      for k in self.criteria}
        # (condition, criterion) → [(winner, loser, weight)] in candidate indices
        self.outcomes: dict[tuple[str, str], list[tuple[int, int, float]]] = defaultdict(list)
        self._fits: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def _outcomes(self, condition: str, clip_a: str, clip_b: str, choices: Mapping[str, str | None]):
        a, b = self.index[condition][clip_a], self.index[condition][clip_b]
        for criterion, choice in choices.items():
            won = {"a": [(a, b, 1.0)], "b": [(b, a, 1.0)], "tie": [(a, b, 0.5), (b, a, 0.5)]}.get(choice or "")
            if criterion in self.criteria and won:
                self._fits.pop((condition, criterion), None)
                yield self.outcomes[condition, criterion], won

    def add(self, condition: str, clip_a: str, clip_b: str, choices: Mapping[str, str | None]) -> None:
        """One showing's stored answers (criterion → a / b / tie / both_bad / skip or None)."""
        for outcomes, won in self._outcomes(condition, clip_a, clip_b, choices):
            outcomes.extend(won)

    def remove(self, condition: str, clip_a: str, clip_b: str, choices: Mapping[str, str | None]) -> None:
        """Take back answers given to `add` before (an undone vote)."""
        for outcomes, won in self._outcomes(condition, clip_a, clip_b, choices):
            for outcome in won:
                outcomes.remove(outcome)

    def posterior(self, condition: str, criterion: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, covariance) of the strengths of the condition's clips (in `self.clips[condition]` order)."""
        key = (condition, criterion)
        if key not in self._fits:
            rows = np.array(self.outcomes.get(key, []), float).reshape(-1, 3)
            self._fits[key] = bradley_terry_posterior(len(self.clips[condition]), rows[:, 0].astype(int),
                                                      rows[:, 1].astype(int), rows[:, 2], self.prior[key])
        return self._fits[key]

    def pair_values(self, condition: str, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Expected wrong orders one showing of each (clip_a, clip_b) removes: the sum over the criteria it answers."""
        index = self.index[condition]
        first, second = np.array([index[a] for a, _ in pairs], int), np.array([index[b] for _, b in pairs], int)
        return sum((decision_errors_removed(*self.posterior(condition, c), first, second) for c in self.criteria),
                   np.zeros(len(pairs)))

    def prefers(self, condition: str, criterion: str, clip_a: str, clip_b: str) -> float:
        """P(clip_a is better than clip_b) under the posterior (averaged over its uncertainty)."""
        index = self.index[condition]
        return win_probability(*self.posterior(condition, criterion), index[clip_a], index[clip_b])

    def rankings(self) -> list[dict]:
        """Every clip's current standing: condition, criterion, rank (1 = best), strength mean and sd, prior, votes."""
        rows = []
        for condition, clips in sorted(self.clips.items()):
            for criterion in self.criteria:
                mean, cov = self.posterior(condition, criterion)
                votes = np.zeros(len(clips))
                for winner, loser, weight in self.outcomes.get((condition, criterion), []):
                    votes[[winner, loser]] += weight
                prior = self.prior[condition, criterion]
                for rank, i in enumerate(np.argsort(-mean), start=1):
                    rows.append({"condition_id": condition, "criterion": criterion, "clip": clips[i], "rank": rank,
                                 "strength": float(mean[i]), "strength_sd": float(np.sqrt(cov[i, i])),
                                 "prior": float(prior[i]), "votes": float(votes[i])})
        return rows
