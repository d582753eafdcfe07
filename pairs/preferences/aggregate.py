"""From votes to decisions: weighted majority per (clip pair, criterion), as SQL over Arrow tables.

A tie is never a win: with `ties="drop"` a tie vote counts for neither clip and a pair whose plurality is
tie is dropped; with `ties="half"` a tie vote gives half its weight to each clip. A pair whose plurality
is both_bad is dropped. Skips are ignored.
"""

from __future__ import annotations

from typing import Literal, get_args

import duckdb
import pyarrow as pa

TiePolicy = Literal["drop", "half"]
TIE_POLICIES: tuple[str, ...] = get_args(TiePolicy)


def vote_decisions(votes: pa.Table, weights: pa.Table | None = None, ties: str = "drop") -> pa.Table:
    """One row per (condition, clip_a, clip_b, criterion) with the winner and the evidence.

    Columns: condition_id, clip_a, clip_b, criterion, winner ('a', 'b', or null when no clip wins),
    votes, weight_a, weight_b, weight_tie, weight_both_bad, agreement (winning weight / all counted
    weight), margin ((winner − loser) / all counted weight), annotators (list).
    `weights` has columns annotator, weight; annotators missing from it weigh 1.
    """
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties must be one of {TIE_POLICIES}")
    con = duckdb.connect()
    con.register("votes", votes)
    con.register("weights", weights if weights is not None else
                 pa.table({"annotator": pa.array([], pa.string()), "weight": pa.array([], pa.float64())}))
    half = 0.5 if ties == "half" else 0.0
    return con.sql(f"""
        WITH weighted AS (
            SELECT v.condition_id, v.clip_a, v.clip_b, v.criterion, v.annotator, v.choice,
                   coalesce(w.weight, 1.0) AS weight
            FROM votes v LEFT JOIN weights w USING (annotator)
            WHERE v.choice <> 'skip'
        ), totals AS (
            SELECT condition_id, clip_a, clip_b, criterion, count(*) AS votes,
                   coalesce(sum(weight) FILTER (WHERE choice = 'a'), 0) AS weight_a,
                   coalesce(sum(weight) FILTER (WHERE choice = 'b'), 0) AS weight_b,
                   coalesce(sum(weight) FILTER (WHERE choice = 'tie'), 0) AS weight_tie,
                   coalesce(sum(weight) FILTER (WHERE choice = 'both_bad'), 0) AS weight_both_bad,
                   list(DISTINCT annotator ORDER BY annotator) AS annotators
            FROM weighted GROUP BY condition_id, clip_a, clip_b, criterion
        ), scored AS (
            SELECT *, weight_a + {half} * weight_tie AS for_a, weight_b + {half} * weight_tie AS for_b,
                   weight_a + weight_b + weight_tie + weight_both_bad AS counted
            FROM totals
        )
        SELECT condition_id, clip_a, clip_b, criterion,
               CASE WHEN greatest(for_a, for_b) <= {"weight_tie" if ties == "drop" else "0"}
                         OR greatest(for_a, for_b) <= weight_both_bad OR for_a = for_b THEN NULL
                    WHEN for_a > for_b THEN 'a' ELSE 'b' END AS winner,
               votes, weight_a, weight_b, weight_tie, weight_both_bad,
               CASE WHEN counted > 0 THEN greatest(for_a, for_b) / counted END AS agreement,
               CASE WHEN counted > 0 THEN abs(for_a - for_b) / counted END AS margin,
               annotators
        FROM scored ORDER BY condition_id, clip_a, clip_b, criterion
    """).to_arrow_table()
