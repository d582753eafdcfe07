"""What the service, the annotation modes and the web layers share: a showing, a refusal, quoting user input.

Every showing is journaled (`journal/showings.jsonl`, fsynced) before the annotator sees it, so a restarted
server gives each annotator the item they had open, under the same showing id.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from campaign.items import Item
from campaign.journal import read_journal
from campaign.store import Campaign
from data_schemas import from_table, utc_now
from data_schemas.records import IssuedShowing

QUOTE_LIMIT = 40
SHOWINGS = "showings"  # the campaign journal of issued showings


class Refused(Exception):
    """A request the service will not carry out; `status` is the HTTP code (400, 403, 404, 409, 503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Showing:
    """One item shown to one annotator."""

    showing_id: str
    annotator: str
    item: Item
    left: str  # "a" or "b": which clip is on the left (A/B mode)
    issued: float  # time.monotonic() when issued, for latency
    practice: bool = False  # a practice item: its answer is a PracticeAnswer, not a vote

    def record(self) -> IssuedShowing:
        """The journal record of this showing."""
        return IssuedShowing(showing_id=self.showing_id, annotator=self.annotator,
                             condition_id=self.item.condition_id, item_id=self.item.item_id, left=self.left,
                             practice=self.practice)


def last_issued(campaign: Campaign) -> dict[str, IssuedShowing]:
    """Each annotator's most recently issued showing, from the campaign's showings journal."""
    journal = read_journal(campaign.journal_path(SHOWINGS), IssuedShowing)
    # A showing journaled before practice existed has practice null: it was no practice item.
    return {record.annotator: dataclasses.replace(record, practice=bool(record.practice))
            for record in from_table(journal, IssuedShowing)}


def reissued(record: IssuedShowing, item: Item) -> Showing:
    """A journaled showing as it is served again after a restart; its latency counts from when it was first shown."""
    shown_for = max(0.0, (utc_now() - record.created_at).total_seconds())
    return Showing(record.showing_id, record.annotator, item, record.left, time.monotonic() - shown_for,
                   record.practice)


def quoted(value: object) -> str:
    """User input as a message may show it: a short printable prefix, so an error never echoes a whole body."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except ValueError:  # an integer too long for Python to print
        text = f"<{type(value).__name__}>"
    prefix = "".join(ch if ch.isprintable() else "?" for ch in text[:QUOTE_LIMIT])
    return repr(prefix + ("…" if len(text) > QUOTE_LIMIT else ""))
