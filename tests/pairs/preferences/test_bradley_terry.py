"""The Bradley–Terry posterior (Laplace approximation with the auto-scores as prior mean), the value of a vote
under it, and how sure it is of each order."""

import choix
import numpy as np
import pytest
from scipy.special import ndtr as sp_ndtr

from pairs.preferences.bradley_terry import (bradley_terry_posterior, decision_errors_removed,
                                             order_probabilities, prior_means)


def test_posterior_mean_is_choix_map_under_a_zero_prior_and_follows_the_prior_mean():
    rng = np.random.default_rng(0)
    winners = rng.integers(0, 5, 60)
    losers = (winners + rng.integers(1, 5, 60)) % 5
    mean, cov = bradley_terry_posterior(5, winners, losers, np.ones(60), np.zeros(5), prior_variance=1.0)
    # choix penalises α‖θ‖², a Gaussian prior of variance 1 / 2α
    assert np.allclose(mean, choix.opt_pairwise(5, list(zip(winners, losers)), alpha=0.5), atol=1e-5)
    assert np.all(np.linalg.eigvalsh(cov) > 0) and np.all(np.diag(cov) < 1.0)  # votes shrink the prior's variance
    prior_only, prior_cov = bradley_terry_posterior(3, [], [], [], np.array([1.0, 0.0, -1.0]))
    assert np.allclose(prior_only, [1, 0, -1]) and np.allclose(prior_cov, np.eye(3))


def test_a_vote_is_worth_most_on_an_undecided_uncertain_pair_and_nothing_on_a_sure_or_known_even_one():
    # three clips: 0 and 1 unknown and even, 2 far behind both and sure of it
    mean, cov = np.array([0.0, 0.0, -8.0]), np.diag([2.0, 2.0, 0.01])
    values = decision_errors_removed(mean, cov, np.array([0, 0, 1]), np.array([1, 2, 2]))
    assert values[0] == values.max() and values[0] > 0.05
    assert values[1] < 1e-3 and values[2] < 1e-3  # their order is settled: a vote would change no decision
    known_even = decision_errors_removed(np.zeros(2), np.full((2, 2), 1.0) + 1e-9 * np.eye(2), [0], [1])
    assert known_even[0] == pytest.approx(0.0, abs=1e-6)  # a known coin flip: no vote will order it
    # Transitivity: once votes make 0 ≻ 1 and 1 ≻ 2 sure, 0 vs 2 is worth little though nobody was asked it.
    flat = np.zeros(3)
    voted = bradley_terry_posterior(3, [0] * 10 + [1] * 10, [1] * 10 + [2] * 10, np.ones(20), flat)
    unvoted = bradley_terry_posterior(3, [], [], [], flat)
    assert decision_errors_removed(*voted, [0], [2])[0] < decision_errors_removed(*unvoted, [0], [2])[0] / 10


def test_the_value_is_the_expected_drop_of_wrong_orders_a_full_refit_gives():
    rng = np.random.default_rng(3)
    winners = rng.integers(0, 4, 12)
    losers = (winners + rng.integers(1, 4, 12)) % 4
    prior = np.array([0.4, 0.1, -0.2, -0.3])
    mean, cov = bradley_terry_posterior(4, winners, losers, np.ones(12), prior)

    def wrong_orders(m, c):  # Σ over pairs of P(the mean's order is wrong), probit as in the module
        i, j = np.triu_indices(4, 1)
        return float(np.sum(sp_ndtr(-np.abs(m[i] - m[j]) / np.sqrt(8 / np.pi + c[i, i] + c[j, j] - 2 * c[i, j]))))

    def expected_drop(a: int, b: int) -> float:  # refit with each outcome of one more vote on a vs b
        p_a = sp_ndtr((mean[a] - mean[b]) / np.sqrt(8 / np.pi + cov[a, a] + cov[b, b] - 2 * cov[a, b]))
        refit = [bradley_terry_posterior(4, np.append(winners, w), np.append(losers, lo), np.ones(13), prior)
                 for w, lo in ((a, b), (b, a))]
        return wrong_orders(mean, cov) - (p_a * wrong_orders(*refit[0]) + (1 - p_a) * wrong_orders(*refit[1]))

    first, second = np.triu_indices(4, 1)
    refitted = np.array([expected_drop(a, b) for a, b in zip(first, second)])
    stepped = decision_errors_removed(mean, cov, first, second)
    assert refitted.max() > 0.03 and np.allclose(stepped, refitted, atol=0.005)
    assert np.argmax(stepped) == np.argmax(refitted)


def test_order_probability_follows_transitivity_and_the_prior_mean_without_votes():
    flat = np.zeros(3)
    # ten votes each for 0 ≻ 1 and 1 ≻ 2: the unasked 0 vs 2 is surer than either asked pair
    i, j, p = order_probabilities(*bradley_terry_posterior(3, [0] * 10 + [1] * 10, [1] * 10 + [2] * 10,
                                                          np.ones(20), flat))
    sure = dict(zip(zip(i.tolist(), j.tolist()), p))
    assert sure[0, 2] > max(sure[0, 1], sure[1, 2]) > 0.9
    # no votes: the prior alone, P(θ_0 > θ_1) = Φ(Δμ0 / √(2σ0²)); a flat prior knows no order
    _, _, by_prior = order_probabilities(*bradley_terry_posterior(2, [], [], [], np.array([1.0, 0.0])))
    assert by_prior[0] == pytest.approx(sp_ndtr(1 / np.sqrt(2)))
    assert order_probabilities(*bradley_terry_posterior(2, [], [], [], np.zeros(2)))[2][0] == pytest.approx(0.5)
    assert np.allclose(prior_means(["a", "b", "c"], {"a": 2.0, "c": 0.0}), [0.5, 0.0, -0.5])  # b unscored: 0
