"""What the admin console and `pairs stats` show: per-annotator and per-criterion statistics of the votes, as SQL over the journal."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from pairs.preferences.agreement import vote_alpha


def per_annotator(con: duckdb.DuckDBPyConnection, votes: str, gold: pa.Table) -> list[dict]:
    """Showings, skips, seconds per item (median), tie, both-bad and left-side rates, votes per hour and gold
    accuracy, per annotator, of table or view `votes` in `con`. The left-side rate (share of A/B wins that went to
    the clip shown on the left) shows position bias."""
    con.register("gold", gold)
    return _dicts(con.execute(f"""
        WITH showings AS (
            SELECT annotator, showing_id, bool_and(choice = 'skip') AS skipped, min(created_at) AS shown_at,
                   max(latency_ms) AS latency_ms  -- one per submission; max: the same whatever the scan order
            FROM {votes} GROUP BY annotator, showing_id
        ), rates AS (
            SELECT annotator,
                   avg(CASE WHEN choice = 'tie' THEN 1.0 ELSE 0.0 END) AS tie_rate,
                   avg(CASE WHEN choice = 'both_bad' THEN 1.0 ELSE 0.0 END) AS both_bad_rate,
                   avg(CASE WHEN choice = "left" THEN 1.0 ELSE 0.0 END) FILTER (WHERE choice IN ('a', 'b')) AS left_rate
            FROM {votes} WHERE choice <> 'skip' GROUP BY annotator
        ), gold_hits AS (
            SELECT v.annotator, avg(CASE WHEN v.choice = g.answer THEN 1.0 ELSE 0.0 END) AS gold_accuracy,
                   count(*) AS gold_votes
            FROM {votes} v JOIN gold g USING (clip_a, clip_b, criterion)
            WHERE v.choice <> 'skip' GROUP BY v.annotator
        )
        SELECT s.annotator, count(*) AS showings, sum(CASE WHEN skipped THEN 1 ELSE 0 END) AS skips,
               median(s.latency_ms) / 1000.0 AS seconds_per_item,
               count(*) / greatest(date_diff('second', min(shown_at), max(shown_at)) / 3600.0, 1 / 60.0) AS per_hour,
               any_value(r.tie_rate) AS tie_rate, any_value(r.both_bad_rate) AS both_bad_rate,
               any_value(r.left_rate) AS left_rate,
               any_value(g.gold_accuracy) AS gold_accuracy, coalesce(any_value(g.gold_votes), 0) AS gold_votes
        FROM showings s LEFT JOIN rates r USING (annotator) LEFT JOIN gold_hits g USING (annotator)
        GROUP BY s.annotator ORDER BY s.annotator
    """))


def per_criterion(con: duckdb.DuckDBPyConnection, votes: str, criteria: tuple[str, ...]) -> list[dict]:
    """Votes, items judged, tie and skip rates and Krippendorff's α, per criterion, of table or view `votes` in
    `con`."""
    counts = {r["criterion"]: r for r in _dicts(con.execute(f"""
        SELECT criterion, count(*) FILTER (WHERE choice <> 'skip') AS votes,
               count(DISTINCT (clip_a, clip_b)) FILTER (WHERE choice <> 'skip') AS items,
               avg(CASE WHEN choice = 'tie' THEN 1.0 ELSE 0.0 END) FILTER (WHERE choice <> 'skip') AS tie_rate,
               avg(CASE WHEN choice = 'skip' THEN 1.0 ELSE 0.0 END) AS skip_rate
        FROM {votes} GROUP BY criterion
    """))}
    empty = {"votes": 0, "items": 0, "tie_rate": None, "skip_rate": None}
    return [{**empty, **counts.get(c, {}), "criterion": c, "alpha": vote_alpha(con, votes, c)} for c in criteria]


def _dicts(result: duckdb.DuckDBPyConnection) -> list[dict]:
    names = [d[0] for d in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]
