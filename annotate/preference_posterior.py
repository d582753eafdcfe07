"""A Bradley–Terry posterior over the candidates of each condition and criterion, with the auto-scores as prior.

Pure fitting first (`bradley_terry_posterior`, `decision_errors_removed`), then the state that the active
assigner keeps (`PreferencePosteriors`): the A/B outcomes seen so far, refitted per condition when new
votes arrive, and the current rankings with their uncertainty for the admin console.

Model: clip i of a condition has strength θ_i; P(i beats j) = σ(θ_i − θ_j). Prior θ ~ N(μ0, σ0² I) with
μ0 = PRIOR_WEIGHT × the clip's auto-score standardised within its condition (0 without a score).
A tie counts half a win each way; both-bad and skips say nothing about the order and are left out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import numpy as np
from scipy.special import log_ndtr, ndtr

from annotate.auto_scores import clip_score_lookup
from campaign.store import Campaign
from pairs.scoring.scorers import HIGHER_IS_BETTER

# Which auto-score is the prior of each criterion; criteria not listed start from a flat prior.
PRIOR_SCORES: dict[str, str] = {
    "lip_sync": "sync/lse_c",
    "expression": "expression/mouth_audio",
    "motion": "motion/jitter",
    "overall": "sync/lse_c",
}
PRIOR_WEIGHT = 0.5  # logits per standard deviation of the auto-score: a 2-sd gap predicts 73 % for the better clip
PRIOR_VARIANCE = 1.0  # σ0²: the prior may be wrong by about one logit either way

# σ(x) ≈ Φ(x / √(8/π)): the logistic taken as a probit, so that one vote's update has a closed form
_PROBIT_VARIANCE = 8 / np.pi
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(24)  # ∫ f(x) N(x; 0, 1) dx ≈ Σ w f(x) / √(2π)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


# Laplace approximation written here rather than taken from `choix` (the field's Bradley–Terry library):
# choix's Bayesian fits (`ep_pairwise`, and `opt_pairwise` with `alpha`) all assume a zero-mean isotropic
# prior, and this model needs the auto-scores as the prior *mean*. With at most a few dozen candidates per
# condition, a Newton solve is exact to 1e-9 in a handful of steps; tests check it against choix's MAP
# (choix's penalty α‖θ‖² is a prior variance of 1 / 2α).
def bradley_terry_posterior(
    n: int, winners: np.ndarray, losers: np.ndarray, weights: np.ndarray, prior_mean: np.ndarray,
    prior_variance: float = PRIOR_VARIANCE, iterations: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the Laplace approximation to the Bradley–Terry posterior of n strengths."""
    theta = np.asarray(prior_mean, float).copy()
    if len(winners) == 0:  # no votes yet: the prior itself (most conditions of a fresh campaign)
        return theta, np.eye(n) * prior_variance
    prior_precision = np.eye(n) / prior_variance
    winners, losers, weights = np.asarray(winners, int), np.asarray(losers, int), np.asarray(weights, float)

    def won_and_hessian(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = 1.0 / (1.0 + np.exp(-(theta[winners] - theta[losers])))  # P(the observed winner wins)
        curvature = weights * p * (1 - p)
        hessian = prior_precision.copy()
        np.add.at(hessian, (winners, winners), curvature)
        np.add.at(hessian, (losers, losers), curvature)
        np.add.at(hessian, (winners, losers), -curvature)
        np.add.at(hessian, (losers, winners), -curvature)
        return p, hessian

    for _ in range(iterations):
        p, hessian = won_and_hessian(theta)
        grad = prior_precision @ (theta - prior_mean)
        np.add.at(grad, winners, -weights * (1 - p))
        np.add.at(grad, losers, weights * (1 - p))
        step = np.linalg.solve(hessian, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta, np.linalg.inv(won_and_hessian(theta)[1])


def decision_errors_removed(mean: np.ndarray, cov: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Expected number of wrong pair orders among a condition's clips that one vote on each pair removes.

    The posterior orders every pair i, j by its mean; that order is wrong with probability min(p, 1 − p),
    p = P(i beats j). A vote on pair k (clips first[k], second[k]) moves every pair's mean and shrinks its
    variance (one assumed-density-filtering step, the logistic taken as a probit); the value is the drop of
    Σ min(p, 1 − p) over all pairs, averaged over the vote's two outcomes. It is near zero for a pair whose
    order the posterior is sure of, or whose gap it knows to be nil: such a vote would change no decision.
    Ties are not modelled (they are half a win each way in the fit).
    """
    first, second = np.asarray(first, int), np.asarray(second, int)
    i, j = np.triu_indices(len(mean), 1)
    towards = cov[:, first] - cov[:, second]  # Σ u_k for each asked pair's difference vector u_k
    shared = towards[i] - towards[j]  # cov(θ_i − θ_j, the asked difference): pairs × asked
    asked_mean = mean[first] - mean[second]
    asked_var = towards[first, np.arange(len(first))] - towards[second, np.arange(len(first))]
    spread = np.sqrt(_PROBIT_VARIANCE + asked_var)
    pair_mean, pair_var = mean[i] - mean[j], cov[i, i] + cov[j, j] - 2 * cov[i, j]

    def wrong(m: np.ndarray, v: np.ndarray) -> np.ndarray:
        return ndtr(-np.abs(m) / np.sqrt(_PROBIT_VARIANCE + np.maximum(v, 0.0)))

    after = np.zeros(len(first))
    for outcome in (1.0, -1.0):  # first wins, second wins
        z = outcome * asked_mean / spread
        step = outcome * np.exp(-0.5 * z**2 - 0.5 * np.log(2 * np.pi) - log_ndtr(z)) / spread
        shrink = step * (step + asked_mean / spread**2)
        after += ndtr(z) * wrong(pair_mean[:, None] + shared * step, pair_var[:, None] - shared**2 * shrink).sum(0)
    return wrong(pair_mean, pair_var).sum() - after


def signed_prior(scores: Mapping[str, Mapping[str, float]],
                 criteria: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """criterion → clip → prior auto-score signed so higher is better, from scorer/metric → clip → value."""
    prior = {}
    for criterion in criteria:
        score = PRIOR_SCORES.get(criterion)
        if score in scores:
            sign = 1.0 if HIGHER_IS_BETTER.get(score, True) else -1.0
            prior[criterion] = {clip: sign * float(v) for clip, v in scores[score].items() if np.isfinite(v)}
    return prior


def prior_scores(campaign: Campaign, criteria: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """criterion → clip → its prior auto-score (PRIOR_SCORES) in the campaign, signed so that higher is better;
    a marked score (no sync peak) counts as no score, so that clip starts from the condition's mean."""
    wanted = {PRIOR_SCORES[c] for c in criteria if c in PRIOR_SCORES}
    return signed_prior({score: clip_score_lookup(campaign, score) for score in wanted}, criteria)


def prior_means(clips: list[str], scores: Mapping[str, float]) -> np.ndarray:
    """μ0 of a condition's clips: PRIOR_WEIGHT × the auto-score standardised within the condition; 0 without one."""
    values = np.array([scores.get(clip, np.nan) for clip in clips], float)
    known = np.isfinite(values)
    mean = np.zeros(len(clips))
    if known.sum() >= 2 and np.std(values[known]) > 0:
        mean[known] = PRIOR_WEIGHT * (values[known] - values[known].mean()) / values[known].std()
    return mean


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
        a, b = self.index[condition][clip_a], self.index[condition][clip_b]
        mean, cov = self.posterior(condition, criterion)
        sd = np.sqrt(cov[a, a] + cov[b, b] - 2 * cov[a, b])
        return float((_WEIGHTS / (1 + np.exp(-(mean[a] - mean[b] + sd * _NODES)))).sum())

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
