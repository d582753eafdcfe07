"""Bradley–Terry posterior over the candidates of one condition and criterion, with the auto-scores as prior.

Pure fitting, apart from who keeps or reports it: the active assigner (annotate/preference_posterior.py) keeps one
per condition and criterion and asks the pair whose vote removes the most wrong orders
(`decision_errors_removed`); `pairs build --from ranking` fits one to the counted votes and exports the pairs
whose order it is sure of (`order_probabilities`).

Model: clip i of a condition has strength θ_i; P(i beats j) = σ(θ_i − θ_j). Prior θ ~ N(μ0, σ0² I) with
μ0 = PRIOR_WEIGHT × the clip's auto-score standardised within its condition (0 without a score, or without
the auto-score prior). A tie counts half a win each way; both-bad and skips say nothing about the order and are
left out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.special import log_ndtr, ndtr

from campaign.store import Campaign
from pairs.scoring.counted_scores import clip_score_lookup
from pairs.scoring.scorers import HIGHER_IS_BETTER, UNMARKED_SQL

# Which auto-score is the prior of each criterion; criteria not listed start from a flat prior.
# Lip sync's is LSE-C at offset 0, not at the best offset: the reported LSE-C does not see a mouth that moves with the
# speech but late (its best offset moves along), which people see at once.
PRIOR_SCORES: dict[str, str] = {
    "lip_sync": "sync/lse_c_at_0",
    "expression": "expression/mouth_audio",
    "motion": "motion/jitter",
    "overall": "sync/lse_c_at_0",
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


def missing_prior_note(campaign: Campaign, criteria: tuple[str, ...]) -> str | None:
    """One line when the prior score of some of `criteria` is on no clip (a campaign not scored, or scored before the
    metric existed) or marked on every clip: those criteria start from a flat prior. None when every one is there."""
    wanted: dict[str, list[str]] = {}
    for criterion in criteria:
        if criterion in PRIOR_SCORES:
            wanted.setdefault(PRIOR_SCORES[criterion], []).append(criterion)
    con = campaign.connect(journals=False)
    said = []
    for score, asked in wanted.items():
        usable = con.execute(f"SELECT bool_or({UNMARKED_SQL}) FROM scores WHERE scorer = ? AND metric = ? "
                             "AND value IS NOT NULL", score.split("/", 1)).fetchall()[0][0]
        if usable is None:  # the two fixes differ: scoring again does nothing for a score already there
            said.append(f"no clip has {score}, the prior of {', '.join(asked)} (`pairs score --campaign "
                        f"{campaign.root}` writes it)")
        elif not usable:
            said.append(f"every clip's {score}, the prior of {', '.join(asked)}, is marked (`pairs scores --campaign "
                        f"{campaign.root}` says why)")
    return f"{'; '.join(said)}: those criteria start from a flat prior" if said else None


def order_probabilities(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, P(θ_i > θ_j)) for every pair i < j: how sure the posterior is that i is the better clip."""
    i, j = np.triu_indices(len(mean), 1)
    sd = np.sqrt(np.maximum(cov[i, i] + cov[j, j] - 2 * cov[i, j], 1e-300))
    return i, j, ndtr((mean[i] - mean[j]) / sd)


def win_probability(mean: np.ndarray, cov: np.ndarray, a: int, b: int) -> float:
    """P(a wins a vote against b), averaged over the posterior's uncertainty of their gap."""
    sd = np.sqrt(cov[a, a] + cov[b, b] - 2 * cov[a, b])
    return float((_WEIGHTS / (1 + np.exp(-(mean[a] - mean[b] + sd * _NODES)))).sum())


def prior_means(clips: list[str], scores: Mapping[str, float]) -> np.ndarray:
    """μ0 of a condition's clips: PRIOR_WEIGHT × the auto-score standardised within the condition; 0 without one."""
    values = np.array([scores.get(clip, np.nan) for clip in clips], float)
    known = np.isfinite(values)
    mean = np.zeros(len(clips))
    if known.sum() >= 2 and np.std(values[known]) > 0:
        mean[known] = PRIOR_WEIGHT * (values[known] - values[known].mean()) / values[known].std()
    return mean
