"""Paired comparisons of two models on the same conditions and seeds, with bootstrap 95% CIs."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values: np.ndarray, statistic=np.mean, samples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of `statistic` over resamples (with replacement) of `values`."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    draws = statistic(values[rng.integers(0, len(values), (samples, len(values)))], axis=1)
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def paired_comparison(policy: np.ndarray, reference: np.ndarray, higher_is_better: bool | None,
                      samples: int = 2000, seed: int = 0) -> dict[str, float | list[float] | int | None]:
    """Means, the mean improvement (policy − reference, signed so that > 0 is better) and the win rate
    (ties count half), each improvement and win rate with a bootstrap 95% CI. Without a better direction
    only means and the raw difference are given."""
    policy, reference = np.asarray(policy, float), np.asarray(reference, float)
    keep = np.isfinite(policy) & np.isfinite(reference)
    policy, reference = policy[keep], reference[keep]
    out: dict = {"n": int(keep.sum()), "policy_mean": _mean(policy), "reference_mean": _mean(reference)}
    if not len(policy):
        return out
    if higher_is_better is None:
        return {**out, "difference": float(np.mean(policy - reference))}
    gain = (policy - reference) * (1 if higher_is_better else -1)
    wins = (gain > 0) + 0.5 * (gain == 0)
    return {**out, "improvement": float(gain.mean()), "improvement_ci": list(bootstrap_ci(gain, seed=seed)),
            "win_rate": float(wins.mean()), "win_rate_ci": list(bootstrap_ci(wins, seed=seed + 1))}


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None
