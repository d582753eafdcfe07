"""Retractions: an annotator's "undo" of their last submission, kept as its own append-only journal.

A retraction never rewrites the votes or ratings journal; it is one more record naming the showing whose
records no longer count. Every reader of votes or ratings that decides something (`pairs build`,
`pairs stats`, the admin console) reads them through `counted`, so all of them honour the same undo.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from campaign.journal import read_journal
from campaign.store import Campaign
from data_schemas import Retraction

JOURNAL = "retractions"


def retractions(campaign: Campaign) -> pa.Table:
    """Every retraction stored in the campaign (an empty table when there is none)."""
    return read_journal(campaign.journal_path(JOURNAL), Retraction)


def retracted_showings(campaign: Campaign, journal: str) -> set[tuple[str, str]]:
    """(showing id, annotator) of every retracted showing of one journal (votes or ratings)."""
    rows = retractions(campaign).filter(pc.equal(pc.field("journal"), journal))
    return set(zip(rows.column("showing_id").to_pylist(), rows.column("annotator").to_pylist()))


def counted(campaign: Campaign, journal: str) -> pa.Table:
    """A votes or ratings journal without the showings their annotators retracted."""
    table = campaign.table(journal)
    gone = retracted_showings(campaign, journal)
    if not gone or table.num_rows == 0:
        return table
    keep = [(s, a) not in gone for s, a in zip(table.column("showing_id").to_pylist(),
                                                 table.column("annotator").to_pylist())]
    return table.filter(pa.array(keep, pa.bool_()))
