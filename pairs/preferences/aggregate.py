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
    con = duckdb.connect()
    con.register("votes", votes)
    decisions_view(con, "votes", weights, ties)
    return con.sql("SELECT * FROM decisions ORDER BY condition_id, clip_a, clip_b, criterion").to_arrow_table()


def decisions_view(con: duckdb.DuckDBPyConnection, votes: str, weights: pa.Table | None = None,
                   ties: str = "drop") -> None:
    """Make view `decisions` in `con`: `vote_decisions` (unordered) of the votes in table or view `votes`, which
    DuckDB scans as a query needs them, without reading them whole (a campaign's journal view:
    `Campaign.connect`, `campaign.retractions.counted_view`)."""
    if ties not in TIE_POLICIES:
        raise ValueError(f"ties must be one of {TIE_POLICIES}")
    half = 0.5 if ties == "half" else 0.0
    weighted = f"SELECT *, 1.0 AS weight FROM {votes} v"  # unweighted: no join over millions of votes
    if weights is not None:
        con.register("weights", weights)
        weighted = f"SELECT v.*, coalesce(w.weight, 1.0) AS weight FROM {votes} v LEFT JOIN weights w USING (annotator)"
    con.execute(f"""CREATE OR REPLACE VIEW decisions AS
        WITH weighted AS (
            SELECT condition_id, clip_a, clip_b, criterion, annotator, choice, weight FROM ({weighted})
            WHERE choice <> 'skip'
        ), totals AS (
            SELECT condition_id, clip_a, clip_b, criterion, count(*) AS votes,
                   coalesce(sum(weight) FILTER (WHERE choice = 'a'), 0) AS weight_a,
                   coalesce(sum(weight) FILTER (WHERE choice = 'b'), 0) AS weight_b,
                   coalesce(sum(weight) FILTER (WHERE choice = 'tie'), 0) AS weight_tie,
                   coalesce(sum(weight) FILTER (WHERE choice = 'both_bad'), 0) AS weight_both_bad,
                   list_sort(list_distinct(list(annotator))) AS annotators  -- 3× list(DISTINCT … ORDER BY …)
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
        FROM scored
    """)
