"""`pairs build --from ranking`: per condition and criterion, the Bradley–Terry posterior of the candidates
(pairs/preferences/bradley_terry.py, the one the active assigner keeps) fitted to the counted votes, and every
clip pair of the condition whose order it is sure of.

Votes on other pairs order a pair nobody was asked (transitivity), and with the auto-score prior the scores
count too, so active assignment, which leaves such pairs unasked, loses no training pairs. A tie counts half a
win each way, both-bad and skips say nothing about the order (as in the assigner's posterior); `--ties` is
for majority decisions only. Annotator weights (`--weighting`) weigh each vote's outcome.
A pair is ordered only by what tells about both its clips: votes that connect them (on the pair, or through
other clips of the condition), or an auto-score of each. The prior's population mean alone orders nothing: a
clip nobody compared is not "average", so it is not put below a clip that won often.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pairs.preferences.bradley_terry import bradley_terry_posterior, order_probabilities, prior_means

RankingPrior = Literal["auto", "none"]


def ranking_pairs(con: duckdb.DuckDBPyConnection, criteria: list[str], prior: Mapping[str, Mapping[str, float]],
                  min_votes: int, min_confidence: float) -> pa.Table:
    """build's raw pair rows (source 'ranking'): every clip pair of a condition whose order the posterior gives at
    least `min_confidence`, the higher-strength clip chosen, `agreement` = that probability, `margin` = the
    strength gap (logits), `votes` and `annotators` those of the pair itself (none for a pair ordered only by
    transitivity or the prior). Reads view `decisions` (the weighted votes per clip pair) and table `clips`;
    `prior` is criterion → clip → signed auto-score ({} for none); a condition × criterion with fewer than
    `min_votes` votes is not fitted."""
    fits = con.sql("""
        WITH voted AS (
            SELECT condition_id, criterion, list(clip_a) AS clip_a, list(clip_b) AS clip_b,
                   list(weight_a + 0.5 * weight_tie) AS for_a, list(weight_b + 0.5 * weight_tie) AS for_b
            FROM decisions WHERE list_contains(?, criterion) GROUP BY condition_id, criterion HAVING sum(votes) >= ?
        ), candidates AS (
            SELECT condition_id, list(sha256 ORDER BY sha256) AS clips FROM clips GROUP BY condition_id
        )
        SELECT v.*, c.clips FROM voted v JOIN candidates c USING (condition_id) ORDER BY condition_id, criterion
    """, params=[criteria, min_votes]).to_arrow_table().to_pylist()
    parts = [_sure_orders(fit, prior.get(fit["criterion"], {}), min_confidence) for fit in fits]
    con.register("ranked", pa.concat_tables(parts) if parts else _sure_orders_table([], [], [], [], [], []))
    return con.sql("""
        SELECT r.condition_id, r.chosen, r.rejected, r.criterion, 'ranking' AS source, r.margin,
               coalesce(d.votes, 0)::BIGINT AS votes, r.agreement,
               coalesce(d.annotators, [])::VARCHAR[] AS annotators
        FROM ranked r LEFT JOIN decisions d
          ON d.condition_id = r.condition_id AND d.criterion = r.criterion
         AND d.clip_a = least(r.chosen, r.rejected) AND d.clip_b = greatest(r.chosen, r.rejected)
    """).to_arrow_table()


def _sure_orders(fit: dict, scores: Mapping[str, float], min_confidence: float) -> pa.Table:
    """One condition × criterion: its posterior, and the pairs it orders with at least `min_confidence`."""
    clips = np.array(fit["clips"])
    a, b = np.searchsorted(clips, fit["clip_a"]), np.searchsorted(clips, fit["clip_b"])
    winners, losers = np.concatenate([a, b]), np.concatenate([b, a])
    weights = np.concatenate([fit["for_a"], fit["for_b"]]).astype(float)
    said = weights > 0  # a side that no vote went to (all for the other clip, or both-bad) is no outcome
    prior = prior_means(list(clips), scores)
    mean, cov = bradley_terry_posterior(len(clips), winners[said], losers[said], weights[said], prior)
    i, j, p = order_probabilities(mean, cov)
    first_better = p >= 0.5
    scored = np.array([clip in scores for clip in clips]) & np.any(prior != 0)  # a flat prior tells nothing
    sure = (np.maximum(p, 1 - p) >= min_confidence) & _informed(len(clips), winners[said], losers[said], scored, i, j)
    chosen, rejected = np.where(first_better, i, j)[sure], np.where(first_better, j, i)[sure]
    return _sure_orders_table([fit["condition_id"]] * int(sure.sum()), clips[chosen].tolist(),
                              clips[rejected].tolist(), [fit["criterion"]] * int(sure.sum()),
                              np.abs(mean[i] - mean[j])[sure], np.maximum(p, 1 - p)[sure])


def _informed(n: int, winners: np.ndarray, losers: np.ndarray, scored: np.ndarray, i: np.ndarray,
              j: np.ndarray) -> np.ndarray:
    """Whether votes connect clips i[k] and j[k], or both have a prior score."""
    graph = coo_matrix((np.ones(len(winners)), (winners, losers)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    voted = np.zeros(n, bool)
    voted[winners] = voted[losers] = True
    return (voted[i] & (component[i] == component[j])) | (scored[i] & scored[j])


def _sure_orders_table(conditions: list[str], chosen: list[str], rejected: list[str], criteria: list[str],
                       margin: np.ndarray | list, agreement: np.ndarray | list) -> pa.Table:
    return pa.table({"condition_id": pa.array(conditions, pa.string()), "chosen": pa.array(chosen, pa.string()),
                     "rejected": pa.array(rejected, pa.string()), "criterion": pa.array(criteria, pa.string()),
                     "margin": pa.array(margin, pa.float64()), "agreement": pa.array(agreement, pa.float64())})
