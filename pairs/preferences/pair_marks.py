"""The segment marks behind A/B pairs: per clip pair, criterion and clip, the union of the marked spans."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from campaign.marks import counted_marks
from campaign.store import Campaign
from data_schemas.marks import merged_spans

# (clip_a, clip_b, criterion, marked clip): the key a pair finds its clips' marks under; clip_a < clip_b.
MarkKey = tuple[str, str, str, str]


def vote_marks(campaign: Campaign, votes: pa.Table) -> dict[MarkKey, list[list[float]]]:
    """The marks that came with the counted `votes` (retracted and refused ones left out), merged per clip pair,
    criterion and clip."""
    con = duckdb.connect()
    con.register("votes", votes)
    con.register("marks", counted_marks(campaign, "votes", votes))
    rows = con.sql("""
        SELECT v.clip_a, v.clip_b, m.criterion, m.clip, list([m.start_s, m.end_s]) AS spans
        FROM marks m JOIN (SELECT DISTINCT showing_id, request_id, clip_a, clip_b FROM votes) v
             USING (showing_id, request_id)
        GROUP BY ALL
    """).fetchall()
    return {(clip_a, clip_b, criterion, clip): merged_spans(spans) for clip_a, clip_b, criterion, clip, spans in rows}


def marks_of(marks: dict[MarkKey, list[list[float]]], chosen: str, rejected: str, criterion: str,
             clip: str) -> list[list[float]]:
    """The merged marks of one clip of a pair on one criterion (empty when nobody marked it)."""
    clip_a, clip_b = sorted((chosen, rejected))
    return marks.get((clip_a, clip_b, criterion, clip), [])
