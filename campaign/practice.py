"""Practice answers: a new annotator's answers to the gold items of their practice round, in a journal of their own.

They are never written to the votes journal, so `pairs build`, `pairs stats` and the admin console, which read
votes, never count them; the annotation service reads them back to know who has finished practice.
"""

from __future__ import annotations

import pyarrow as pa

from campaign.journal import read_journal
from campaign.store import Campaign
from data_schemas import PracticeAnswer

JOURNAL = "practice"


def practice_answers(campaign: Campaign) -> pa.Table:
    """Every practice answer stored in the campaign (an empty table when there is none)."""
    return read_journal(campaign.journal_path(JOURNAL), PracticeAnswer)
