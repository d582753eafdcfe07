"""`pairs stats`: agreement, annotator reliability, Bradley–Terry strengths, and which auto-score predicts humans."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

from campaign.items import gold_answers
from pairs.vote_stats import per_annotator
from pairs.preferences.agreement import vote_alpha
from campaign.items import ab_items
from campaign.retractions import counted
from campaign.store import Campaign
from campaign.task import load_task
from pairs.preferences.aggregate import vote_decisions
from pairs.scoring.scorers import HIGHER_IS_BETTER, UNMARKED_SQL


def bradley_terry(winners: np.ndarray, losers: np.ndarray, players: int, iterations: int = 200) -> np.ndarray:
    """Log-strengths (mean 0) by Hunter's MM algorithm; a tiny prior win against a virtual average keeps
    players who never won or never lost finite."""
    strength = np.ones(players)
    wins = np.bincount(winners, minlength=players) + 0.1
    for _ in range(iterations):
        inverse = 1.0 / (strength[winners] + strength[losers])
        denominator = np.bincount(winners, inverse, players) + np.bincount(losers, inverse, players)
        strength = wins / (denominator + 0.2 / (strength + 1.0))
        strength /= np.exp(np.log(strength).mean())
    return np.log(strength)


def bootstrap_bradley_terry(winners: np.ndarray, losers: np.ndarray, players: int, samples: int = 200,
                            seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strengths, 2.5th percentile, 97.5th percentile) with outcomes resampled with replacement."""
    rng = np.random.default_rng(seed)
    fits = np.stack([bradley_terry(winners[idx], losers[idx], players)
                     for idx in rng.integers(0, len(winners), (samples, len(winners)))])
    return bradley_terry(winners, losers, players), np.percentile(fits, 2.5, 0), np.percentile(fits, 97.5, 0)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a positive outscores a negative (ties count half): Mann–Whitney AUC."""
    values = np.concatenate([positive, negative]).astype(float)
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(1, len(values) + 1)
    _, group = np.unique(values, return_inverse=True)
    ranks = (np.bincount(group, ranks) / np.bincount(group))[group]  # tied values share their mean rank
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def campaign_stats(campaign: Campaign, by: str = "generator", bootstrap: int = 200, seed: int = 0) -> dict:
    """Every number of `pairs stats` as JSON-ready data, over the criteria the campaign's task asks."""
    criteria = tuple(load_task(campaign).criteria)
    votes = counted(campaign, "votes")  # undone votes never count
    decisions = vote_decisions(votes)
    con = duckdb.connect()
    con.register("votes", votes)
    con.register("decisions", decisions)
    con.register("clips", campaign.table("clips"))
    con.register("stored_scores", campaign.table("scores"))
    # A marked score (no sync peak: SyncNet saw no sync to measure) does not count, as in pairs build.
    con.execute(f"CREATE VIEW scores AS SELECT * FROM stored_scores WHERE {UNMARKED_SQL}")
    agreement = dict(con.execute("""
        SELECT v.annotator, avg(CASE WHEN v.choice = d.winner THEN 1.0 ELSE 0.0 END)
        FROM votes v JOIN decisions d USING (condition_id, clip_a, clip_b, criterion)
        WHERE v.choice <> 'skip' AND d.winner IS NOT NULL GROUP BY v.annotator
    """).fetchall())
    gold = gold_answers([i for i in ab_items(campaign, criteria) if i.is_gold])
    annotators = [{**row, "agreement_with_majority": agreement.get(row["annotator"])}
                  for row in per_annotator(votes, gold)]
    return {
        "alpha": {c: vote_alpha(votes, c) for c in criteria},
        "annotators": annotators,
        "strengths": _strengths(con, by, bootstrap, seed),
        "auto_scores": _auto_scores(con),
    }


def _strengths(con: duckdb.DuckDBPyConnection, by: str, samples: int, seed: int) -> list[dict]:
    column = {"generator": "generator || ':' || generator_version", "seed": "seed"}[by]
    con.execute(f"CREATE OR REPLACE TEMP VIEW clips_grouped AS SELECT sha256, {column} AS grp FROM clips")
    names, winners, losers = _outcomes(con)
    if len(winners) == 0:
        return []
    strength, low, high = bootstrap_bradley_terry(winners, losers, len(names), samples, seed)
    order = np.argsort(-strength)
    return [{"name": names[i], "strength": float(strength[i]), "ci_low": float(low[i]), "ci_high": float(high[i]),
             "wins": int((winners == i).sum()), "losses": int((losers == i).sum())} for i in order]


def _outcomes(con: duckdb.DuckDBPyConnection) -> tuple[list, np.ndarray, np.ndarray]:
    """(group names, winner index, loser index) of every decided overall pair between two groups."""
    rows = con.execute("""
        SELECT gw.grp::VARCHAR, gl.grp::VARCHAR
        FROM decisions d
        JOIN clips_grouped gw ON gw.sha256 = CASE d.winner WHEN 'a' THEN d.clip_a ELSE d.clip_b END
        JOIN clips_grouped gl ON gl.sha256 = CASE d.winner WHEN 'a' THEN d.clip_b ELSE d.clip_a END
        WHERE d.winner IS NOT NULL AND d.criterion = 'overall'
          AND gw.grp IS NOT NULL AND gl.grp IS NOT NULL AND gw.grp::VARCHAR <> gl.grp::VARCHAR
    """).fetchall()
    names = sorted({name for row in rows for name in row})
    index = {name: i for i, name in enumerate(names)}
    return names, np.array([index[w] for w, _ in rows], int), np.array([index[l] for _, l in rows], int)


def winner_agreement(winner: np.ndarray, loser: np.ndarray, higher_is_better: bool | None) -> dict[str, float]:
    """How often a score prefers the human winner over the loser: paired accuracy (ties half) and AUC.
    "Prefers" follows the score's better direction; without one it means "is higher"."""
    sign = -1.0 if higher_is_better is False else 1.0
    diff = sign * (np.asarray(winner, float) - np.asarray(loser, float))
    return {"accuracy": float(((diff > 0) + 0.5 * (diff == 0)).mean()),
            "auc": auc(sign * np.asarray(winner, float), sign * np.asarray(loser, float))}


def _auto_scores(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """For each scorer/metric and criterion: how often it prefers the human winner."""
    rows = con.execute("""
        SELECT s.scorer || '/' || s.metric AS score, d.criterion, sw.value AS winner, sl.value AS loser
        FROM decisions d
        JOIN scores sw ON sw.clip = CASE d.winner WHEN 'a' THEN d.clip_a ELSE d.clip_b END
        JOIN scores sl ON sl.clip = CASE d.winner WHEN 'a' THEN d.clip_b ELSE d.clip_a END
                      AND sl.scorer = sw.scorer AND sl.metric = sw.metric
        JOIN (SELECT DISTINCT scorer, metric FROM scores) s ON s.scorer = sw.scorer AND s.metric = sw.metric
        WHERE d.winner IS NOT NULL AND sw.value IS NOT NULL AND sl.value IS NOT NULL
    """).fetchall()
    grouped: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for score, criterion, winner, loser in rows:
        grouped.setdefault((score, criterion), []).append((winner, loser))
    out = []
    for (score, criterion), values in sorted(grouped.items()):
        pairs = np.array(values)
        out.append({"score": score, "criterion": criterion, "pairs": len(pairs),
                    **winner_agreement(pairs[:, 0], pairs[:, 1], HIGHER_IS_BETTER.get(score))})
    return out
