"""Annotator reliability weights: from gold accuracy, or estimated by Dawid–Skene without gold.

Both give log-odds weights, log((K−1)·acc / (1 − acc)) floored at 0: the weight under which a weighted
majority is the most likely answer when each annotator is right with probability acc and otherwise
picks any other of the K answers.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

CHOICES = ("a", "b", "tie", "both_bad")


def log_odds(accuracy: np.ndarray, classes: int = len(CHOICES)) -> np.ndarray:
    """Voting weight of an annotator with this accuracy; 0 at or below chance."""
    acc = np.clip(accuracy, 1e-3, 1 - 1e-3)
    return np.maximum(np.log((classes - 1) * acc / (1 - acc)), 0.0)


def _table(annotators, accuracy) -> pa.Table:
    accuracy = np.asarray(accuracy, float)
    return pa.table({"annotator": pa.array(list(annotators), pa.string()),
                     "accuracy": pa.array(accuracy, pa.float64()),
                     "weight": pa.array(log_odds(accuracy), pa.float64())})


def gold_weights(votes: pa.Table, gold: pa.Table) -> pa.Table:
    """annotator, accuracy, weight from answers to gold items (accuracy smoothed as (hits+1)/(n+2))."""
    con = duckdb.connect()
    con.register("votes", votes)
    con.register("gold", gold)
    rows = con.execute("""
        SELECT v.annotator, (sum(CASE WHEN v.choice = g.answer THEN 1 ELSE 0 END) + 1.0) / (count(*) + 2.0)
        FROM votes v JOIN gold g USING (clip_a, clip_b, criterion)
        WHERE v.choice <> 'skip' GROUP BY v.annotator ORDER BY v.annotator
    """).fetchall()
    return _table([r[0] for r in rows], [r[1] for r in rows])


def dawid_skene(votes: pa.Table, iterations: int = 50, smoothing: float = 0.01) -> pa.Table:
    """annotator, accuracy, weight estimated by Dawid–Skene EM over all non-skip votes.

    Items are (clip_a, clip_b, criterion); each annotator has a K×K confusion matrix; the accuracy
    reported is the prior-weighted diagonal of that matrix.
    """
    con = duckdb.connect()
    con.register("votes", votes)
    rows = con.execute("""
        SELECT dense_rank() OVER (ORDER BY clip_a, clip_b, criterion) - 1 AS item,
               dense_rank() OVER (ORDER BY annotator) - 1 AS who, annotator,
               CASE choice WHEN 'a' THEN 0 WHEN 'b' THEN 1 WHEN 'tie' THEN 2 ELSE 3 END AS label
        FROM votes WHERE choice <> 'skip'
    """).fetchnumpy()
    if len(rows["item"]) == 0:
        return _table([], [])
    k = len(CHOICES)
    items, who, label = rows["item"].astype(int), rows["who"].astype(int), rows["label"].astype(int)
    names = np.empty(who.max() + 1, dtype=object)
    names[who] = rows["annotator"]
    counts = np.zeros((items.max() + 1, who.max() + 1, k))
    np.add.at(counts, (items, who, label), 1.0)
    truth = counts.sum(axis=1) + smoothing  # start from the (soft) majority
    truth /= truth.sum(axis=1, keepdims=True)
    for _ in range(iterations):
        prior = truth.mean(axis=0)
        confusion = np.einsum("ik,ijl->jkl", truth, counts) + smoothing
        confusion /= confusion.sum(axis=2, keepdims=True)
        log_truth = np.log(prior) + np.einsum("ijl,jkl->ik", counts, np.log(confusion))
        log_truth -= log_truth.max(axis=1, keepdims=True)
        truth = np.exp(log_truth)
        truth /= truth.sum(axis=1, keepdims=True)
    accuracy = np.einsum("k,jkk->j", truth.mean(axis=0), confusion)
    return _table(names, accuracy)
