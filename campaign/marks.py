"""Segment marks: spans where a clip fails a criterion, kept as their own append-only journal.

The annotation service appends a submission's marks before its votes (or ratings) and never twice for one
request, so a mark counts exactly when the answer it came with counts: `counted_marks` keeps the marks whose
(showing id, request id) has a counted answer. Marks of an answer refused after they were written, or of an
answer retracted (undo), are on disk but count nowhere.
"""

from __future__ import annotations

import pyarrow as pa

from campaign.journal import read_journal
from campaign.retractions import counted
from campaign.store import Campaign
from data_schemas import SegmentMark

JOURNAL = "marks"


def marks(campaign: Campaign) -> pa.Table:
    """Every mark stored in the campaign, counted or not (an empty table when there is none)."""
    return read_journal(campaign.journal_path(JOURNAL), SegmentMark)


def counted_marks(campaign: Campaign, journal: str = "votes", answers: pa.Table | None = None) -> pa.Table:
    """The marks that came with a counted answer of `journal` (votes or ratings); `answers`: those counted
    answers when the caller has read them already."""
    table = marks(campaign)
    if table.num_rows == 0:
        return table
    answers = counted(campaign, journal) if answers is None else answers
    answered = set(zip(answers.column("showing_id").to_pylist(), answers.column("request_id").to_pylist()))
    keep = [key in answered for key in zip(table.column("showing_id").to_pylist(),
                                           table.column("request_id").to_pylist())]
    return table.filter(pa.array(keep, pa.bool_()))
