"""Inter-annotator agreement: Krippendorff's α over A/B votes (nominal), through the `krippendorff` package."""

from __future__ import annotations

import duckdb
import krippendorff
import numpy as np

CHOICES = ("a", "b", "tie", "both_bad")  # the answers α compares; skips say nothing about the clips


def answer_counts(con: duckdb.DuckDBPyConnection, votes: str, criterion: str) -> np.ndarray:
    """Answer counts [item, answer in CHOICES] of the items of one criterion that two or more annotators answered
    (each annotator's latest answer to an item counts once), from table or view `votes` in `con`: the package's
    `value_counts` input, counted by DuckDB, so 10 M votes need no annotator × item matrix (gigabytes)."""
    counts = ", ".join(f"count(*) FILTER (WHERE choice = '{c}')" for c in CHOICES)
    rows = con.execute(f"""
        WITH answers AS (
            SELECT clip_a, clip_b, arg_max(choice, created_at) AS choice FROM {votes}
            WHERE criterion = $criterion AND choice IN {CHOICES} GROUP BY clip_a, clip_b, annotator
        )
        SELECT {counts} FROM answers GROUP BY clip_a, clip_b HAVING count(*) >= 2
    """, {"criterion": criterion}).fetchnumpy()
    return np.stack([np.asarray(column, np.int64) for column in rows.values()], axis=1)


def vote_alpha(con: duckdb.DuckDBPyConnection, votes: str, criterion: str) -> float | None:
    """α of one criterion's A/B votes in table or view `votes` (skips left out); None when no item has two answers
    or the answers never differ."""
    counts = answer_counts(con, votes, criterion)
    if len(counts) == 0 or np.count_nonzero(counts.sum(axis=0)) < 2:
        return None  # α is undefined without overlap or without any variation
    return float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))
