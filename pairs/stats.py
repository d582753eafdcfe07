"""`pairs stats`: agreement, annotator reliability, Bradley–Terry strengths, and which auto-score predicts humans."""

from __future__ import annotations

import duckdb
import numpy as np

from campaign.items import ab_items, gold_answers
from campaign.retractions import counted_view
from campaign.store import Campaign
from campaign.task import load_task
from pairs.preferences.aggregate import decisions_view
from pairs.preferences.agreement import vote_alpha
from pairs.vote_stats import per_annotator
from pairs.scoring.scorers import HIGHER_IS_BETTER, UNMARKED_SQL


def bradley_terry(winners: np.ndarray, losers: np.ndarray, players: int, iterations: int = 200,
                  counts: np.ndarray | None = None) -> np.ndarray:
    """Log-strengths (mean 0) by Hunter's MM algorithm; a tiny prior win against a virtual average keeps
    players who never won or never lost finite. `counts`: how often each (winner, loser) outcome happened (1 each
    when not given). Written here rather than calling choix: its pairwise fits take one tuple per outcome, with no
    counts, and the bootstrap below refits distinct outcomes with counts 200 times."""
    counts = np.ones(len(winners)) if counts is None else np.asarray(counts, float)
    strength = np.ones(players)
    wins = np.bincount(winners, counts, players) + 0.1
    for _ in range(iterations):
        inverse = counts / (strength[winners] + strength[losers])
        denominator = np.bincount(winners, inverse, players) + np.bincount(losers, inverse, players)
        strength = wins / (denominator + 0.2 / (strength + 1.0))
        strength /= np.exp(np.log(strength).mean())
    return np.log(strength)


def bootstrap_bradley_terry(winners: np.ndarray, losers: np.ndarray, players: int, samples: int = 200,
                            seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strengths, 2.5th percentile, 97.5th percentile) with outcomes resampled with replacement. The fits run on
    the distinct (winner, loser) outcomes and their counts (a resample is a multinomial draw of those counts), so
    their cost does not grow with the number of decided pairs."""
    outcomes, counts = np.unique(np.stack([winners, losers], axis=1), axis=0, return_counts=True)
    rng = np.random.default_rng(seed)
    fits = np.stack([bradley_terry(outcomes[:, 0], outcomes[:, 1], players, counts=drawn)
                     for drawn in rng.multinomial(len(winners), counts / len(winners), size=samples)])
    return (bradley_terry(outcomes[:, 0], outcomes[:, 1], players, counts=counts),
            np.percentile(fits, 2.5, 0), np.percentile(fits, 97.5, 0))


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
    """Every number of `pairs stats` as JSON-ready data, over the criteria the campaign's task asks. All of it is
    SQL over the campaign's lazy views (the votes are never read whole: 10 M of them fit in a few GiB)."""
    criteria = tuple(load_task(campaign).criteria)
    con = campaign.connect()
    votes = counted_view(con, campaign, "votes")  # undone votes never count
    decisions_view(con, votes)
    # Three queries read the decided pairs (the view would aggregate the votes each time); joins on plain winner and
    # loser columns, as a CASE in a join condition let DuckDB join the two score sides on the metric first (a cross
    # product of every clip's scores at 1 M clips).
    con.execute("""CREATE TEMP TABLE decided AS
        SELECT condition_id, clip_a, clip_b, criterion, winner,
               CASE winner WHEN 'a' THEN clip_a ELSE clip_b END AS winner_clip,
               CASE winner WHEN 'a' THEN clip_b ELSE clip_a END AS loser_clip
        FROM decisions WHERE winner IS NOT NULL""")
    agreement = dict(con.execute(f"""
        SELECT v.annotator, avg(CASE WHEN v.choice = d.winner THEN 1.0 ELSE 0.0 END)
        FROM {votes} v JOIN decided d USING (condition_id, clip_a, clip_b, criterion)
        WHERE v.choice <> 'skip' GROUP BY v.annotator
    """).fetchall())
    gold = gold_answers([i for i in ab_items(campaign, criteria) if i.is_gold])
    annotators = [{**row, "agreement_with_majority": agreement.get(row["annotator"])}
                  for row in per_annotator(con, votes, gold)]
    return {
        "alpha": {c: vote_alpha(con, votes, c) for c in criteria},
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
    wins, losses = np.bincount(winners, minlength=len(names)), np.bincount(losers, minlength=len(names))
    return [{"name": names[i], "strength": float(strength[i]), "ci_low": float(low[i]), "ci_high": float(high[i]),
             "wins": int(wins[i]), "losses": int(losses[i])} for i in np.argsort(-strength)]


def _outcomes(con: duckdb.DuckDBPyConnection) -> tuple[list, np.ndarray, np.ndarray]:
    """(group names, winner index, loser index) of every decided overall pair between two groups."""
    rows = con.execute("""
        SELECT gw.grp::VARCHAR AS winner, gl.grp::VARCHAR AS loser
        FROM decided d
        JOIN clips_grouped gw ON gw.sha256 = d.winner_clip JOIN clips_grouped gl ON gl.sha256 = d.loser_clip
        WHERE d.criterion = 'overall' AND gw.grp IS NOT NULL AND gl.grp IS NOT NULL
          AND gw.grp::VARCHAR <> gl.grp::VARCHAR
    """).fetchnumpy()
    names, index = np.unique(np.concatenate([rows["winner"], rows["loser"]]).astype(str), return_inverse=True)
    return names.tolist(), index[: len(rows["winner"])], index[len(rows["winner"]):]


def winner_agreement(winner: np.ndarray, loser: np.ndarray, higher_is_better: bool | None) -> dict[str, float]:
    """How often a score prefers the human winner over the loser: paired accuracy (ties half) and AUC.
    "Prefers" follows the score's better direction; without one it means "is higher"."""
    sign = -1.0 if higher_is_better is False else 1.0
    diff = sign * (np.asarray(winner, float) - np.asarray(loser, float))
    return {"accuracy": float(((diff > 0) + 0.5 * (diff == 0)).mean()),
            "auc": auc(sign * np.asarray(winner, float), sign * np.asarray(loser, float))}


def _auto_scores(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """For each scorer/metric and criterion: how often it prefers the human winner."""
    # A marked score (no sync peak: SyncNet saw no sync to measure) does not count, as in pairs build.
    con.execute(f"""CREATE TEMP TABLE clip_scores AS
        SELECT clip, scorer || '/' || metric AS score, value FROM scores WHERE {UNMARKED_SQL} AND value IS NOT NULL""")
    con.execute("""CREATE TEMP TABLE scored_decisions AS
        SELECT w.score, d.criterion, w.value AS winner, l.value AS loser
        FROM decided d JOIN clip_scores w ON w.clip = d.winner_clip
        JOIN clip_scores l ON l.clip = d.loser_clip AND l.score = w.score""")
    out = []
    for score, criterion, pairs in con.execute("SELECT score, criterion, count(*) FROM scored_decisions "
                                               "GROUP BY ALL ORDER BY ALL").fetchall():
        values = con.execute("SELECT winner, loser FROM scored_decisions WHERE score = ? AND criterion = ?",
                             [score, criterion]).fetchnumpy()
        out.append({"score": score, "criterion": criterion, "pairs": pairs,
                    **winner_agreement(values["winner"], values["loser"], HIGHER_IS_BETTER.get(score))})
    return out
