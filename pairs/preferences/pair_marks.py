"""The segment marks behind A/B pairs: per clip pair, criterion and clip, the union of the marked spans."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from campaign.marks import marks
from campaign.store import Campaign
from data_schemas.marks import merged_spans


def vote_marks(campaign: Campaign, con: duckdb.DuckDBPyConnection, votes: str | None) -> pa.Table:
    """The marks that came with the counted votes in view `votes` of `con` (a mark counts when its answer does,
    so joining the counted votes leaves out retracted and refused ones), merged per clip pair, criterion and
    clip: columns clip_a, clip_b, criterion, clip, spans. None: no votes, no marks."""
    found = marks(campaign) if votes is not None else None
    if found is not None and found.num_rows:
        con.register("marks", found)
    rows = [] if found is None or found.num_rows == 0 else con.sql(f"""
        SELECT v.clip_a, v.clip_b, m.criterion, m.clip, list([m.start_s, m.end_s]) AS spans
        FROM marks m JOIN (SELECT DISTINCT showing_id, request_id, clip_a, clip_b FROM {votes}
                           WHERE showing_id IN (SELECT showing_id FROM marks)) v
             USING (showing_id, request_id)
        GROUP BY ALL
    """).fetchall()
    columns = list(zip(*rows)) if rows else [[]] * 5
    return pa.table({"clip_a": pa.array(columns[0], pa.string()), "clip_b": pa.array(columns[1], pa.string()),
                     "criterion": pa.array(columns[2], pa.string()), "clip": pa.array(columns[3], pa.string()),
                     "spans": pa.array([merged_spans(spans) for spans in columns[4]],
                                       pa.list_(pa.list_(pa.float64())))})
