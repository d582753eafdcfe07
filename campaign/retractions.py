"""Retractions: an annotator's "undo" of their last submission, kept as its own append-only journal.

A retraction never rewrites the votes or ratings journal; it is one more record naming the showing whose
records no longer count. Every reader of votes or ratings that decides something (`pairs build`,
`pairs stats`, the admin console) reads them through `counted`, so all of them honour the same undo.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from campaign.journal import read_journal
from campaign.store import Campaign
from data_schemas import Retraction

JOURNAL = "retractions"


def retractions(campaign: Campaign) -> pa.Table:
    """Every retraction stored in the campaign (an empty table when there is none)."""
    return read_journal(campaign.journal_path(JOURNAL), Retraction)


def retracted_mask(campaign: Campaign, journal: str, table: pa.Table) -> pa.BooleanArray:
    """For each row of `table` (rows of the votes or ratings journal), whether its annotator retracted its showing."""
    gone = _retracted(campaign, journal)
    if gone.num_rows == 0 or table.num_rows == 0:
        return pa.array([False] * table.num_rows, pa.bool_())
    return pc.is_in(_keys(table), value_set=_keys(gone))


def counted(campaign: Campaign, journal: str) -> pa.Table:
    """A votes or ratings journal without the showings their annotators retracted."""
    table = campaign.table(journal)
    return table.filter(pc.invert(retracted_mask(campaign, journal, table)))


def counted_view(con: duckdb.DuckDBPyConnection, campaign: Campaign, journal: str) -> str:
    """In a `Campaign.connect()` connection, a view of a votes or ratings journal without the retracted showings,
    scanned by DuckDB rather than read whole; returns the view's name."""
    con.execute(f"""CREATE OR REPLACE VIEW counted_{journal} AS SELECT j.* FROM {journal} j
                    ANTI JOIN {retracted_view(con, campaign, journal)} r
                    ON j.showing_id = r.showing_id AND j.annotator = r.annotator""")
    return f"counted_{journal}"


def retracted_view(con: duckdb.DuckDBPyConnection, campaign: Campaign, journal: str) -> str:
    """In a DuckDB connection, the (showing_id, annotator) of a votes or ratings journal's retracted showings;
    returns its name."""
    con.register(f"retracted_{journal}", _retracted(campaign, journal))
    return f"retracted_{journal}"


def _retracted(campaign: Campaign, journal: str) -> pa.Table:
    """(showing_id, annotator) of the retracted showings of one journal."""
    return retractions(campaign).filter(pc.equal(pc.field("journal"), journal)).select(["showing_id", "annotator"])


def _keys(table: pa.Table) -> pa.Array:
    """showing id and annotator as one string (ids cannot hold the separator)."""
    return pc.binary_join_element_wise(table["showing_id"], table["annotator"], "\x1f")
