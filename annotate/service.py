"""The annotation service: the only thing the web app calls. It decides what is stored, never the UI.

- A showing is one item shown to one annotator, with the side each clip is on; its id is issued here.
- A submission is stored (appended and fsynced) before it is acknowledged; the same showing submitted
  again (double click, retry, second tab) is acknowledged again and stored once.
- The annotator is always the authenticated user passed in by the server; a showing belongs to the
  annotator it was issued to, and nobody else can answer it.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from annotate.assignment import Assigner
from annotate.items import Item, ab_items, rating_items
from annotate.journal import JournalWriter
from annotate.store import Campaign
from data_schemas import CRITERIA, Condition, Rating, Vote, from_table, require_valid, utc_now

Mode = Literal["ab", "rating"]
AB_CHOICES = ("a", "b", "tie", "both_bad")


class Refused(Exception):
    """A request the service will not carry out; `status` is the HTTP-style code (400, 403, 404, 409)."""

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


@dataclass(frozen=True)
class Ack:
    """The answer to a submission: stored now, or already stored before (a repeat)."""

    showing_id: str
    repeated: bool
    done: int  # items this annotator has finished
    available: int  # finished + still available to them


class AnnotationService:
    """Holds the assignment state and the journal for one campaign and one mode."""

    def __init__(
        self,
        campaign: Campaign,
        mode: Mode = "ab",
        criteria: tuple[str, ...] = CRITERIA,
        overlap: int = 3,
        gold_rate: float = 0.1,
        seed: int = 0,
    ) -> None:
        if mode not in ("ab", "rating"):
            raise ValueError(f"unknown mode {mode!r}")
        self.campaign, self.mode, self.criteria = campaign, mode, tuple(criteria)
        items = ab_items(campaign, self.criteria) if mode == "ab" else rating_items(campaign)
        self.assigner = Assigner(items, overlap, gold_rate if mode == "ab" else 0.0, seed)
        self._conditions = {c.condition_id: c for c in from_table(campaign.table("conditions"), Condition)}
        self._clip_media = dict(zip(*campaign.table("clips").select(["sha256", "media_path"]).to_pydict().values()))
        self._record_type = Vote if mode == "ab" else Rating
        self._journal_name = "votes" if mode == "ab" else "ratings"
        self._lock = threading.Lock()
        self._open: dict[str, Showing] = {}  # showing id → showing not yet answered
        self._current: dict[str, str] = {}  # annotator → their open showing id
        self._answered: dict[str, tuple[str, str]] = {}  # showing id → (annotator, request id)
        self._requests: set[str] = set()
        self._writing: dict[str, threading.Event] = {}  # showing id → set once its records are on disk
        self._rng = secrets.SystemRandom()
        self._replay_journal()
        self.journal = JournalWriter(campaign.journal_path(self._journal_name), self._record_type)

    def _replay_journal(self) -> None:
        """Rebuild who finished what from the journal, so a restart resumes everyone where they were."""
        table = self.campaign.table(self._journal_name)
        key = ["clip_a", "clip_b"] if self.mode == "ab" else ["clip"]
        value = "choice" if self.mode == "ab" else "score"
        by_clips = {(i.clip_a, i.clip_b) if self.mode == "ab" else (i.clip_a,): i for i in self.assigner.items.values()}
        showings: dict[str, list] = {}
        for row in table.select(["showing_id", "request_id", "annotator", *key, value]).to_pylist():
            showings.setdefault(row["showing_id"], []).append(row)
        for showing_id, rows in showings.items():
            first = rows[0]
            self._answered[showing_id] = (first["annotator"], first["request_id"])
            self._requests.add(first["request_id"])
            item = by_clips.get(tuple(first[k] for k in key))
            if item is not None:
                skipped = all(r[value] in ("skip", None) for r in rows)
                self.assigner.record(first["annotator"], item.item_id, skipped)

    # -- serving -------------------------------------------------------------------------------------

    def next_showing(self, annotator: str) -> Showing | None:
        """The annotator's open showing if they have one (a reload resumes it), else a new one; None when done."""
        with self._lock:
            current = self._current.get(annotator)
            if current is not None:
                return self._open[current]
            item = self.assigner.next_item(annotator)
            if item is None:
                return None
            showing = Showing(secrets.token_hex(12), annotator, item, self._rng.choice("ab"), time.monotonic())
            self._open[showing.showing_id] = showing
            self._current[annotator] = showing.showing_id
            return showing

    def showing(self, annotator: str, showing_id: str) -> Showing:
        """An open showing of this annotator (404 unknown, 403 someone else's)."""
        with self._lock:
            return self._owned(annotator, showing_id)

    def _owned(self, annotator: str, showing_id: str) -> Showing:
        showing = self._open.get(showing_id)
        if showing is None:
            raise Refused(404, f"showing {showing_id!r} is not open; load the next item")
        if showing.annotator != annotator:
            raise Refused(403, "this item is assigned to another annotator")
        return showing

    def submit(
        self,
        annotator: str,
        showing_id: str,
        request_id: str,
        answers: dict[str, str] | None,
        skip_reason: str | None = None,
    ) -> Ack:
        """Store one answer per criterion (or a skip when `answers` is None) durably, then acknowledge."""
        with self._lock:
            if showing_id in self._answered:
                return self._repeat(annotator, showing_id)
            showing = self._owned(annotator, showing_id)
            if request_id in self._requests:
                raise Refused(409, f"request id {request_id!r} was already used for another submission")
            records = self._records(showing, request_id, answers, skip_reason)
            # Reserve before writing, so a concurrent repeat of this showing waits for our answer.
            self._answered[showing_id] = (annotator, request_id)
            self._requests.add(request_id)
            written = self._writing[showing_id] = threading.Event()
            del self._open[showing_id]
            self._current.pop(annotator, None)
        try:
            self.journal.append(records)
        except BaseException:
            with self._lock:  # not on disk: undo the reservation so the annotator can submit again
                del self._answered[showing_id]
                self._requests.discard(request_id)
                self._open[showing_id] = showing
                self._current[annotator] = showing_id
            raise
        finally:
            with self._lock:
                self._writing.pop(showing_id, None)
            written.set()
        with self._lock:
            self.assigner.record(annotator, showing.item.item_id, skipped=answers is None)
            return Ack(showing_id, False, *self.assigner.progress(annotator))

    def _repeat(self, annotator: str, showing_id: str) -> Ack:
        """A showing submitted again: acknowledge once the first submission is on disk. Holds the lock."""
        owner, _ = self._answered[showing_id]
        if owner != annotator:
            raise Refused(403, "this item is assigned to another annotator")
        written = self._writing.get(showing_id)
        if written is not None:
            self._lock.release()
            try:
                written.wait()
            finally:
                self._lock.acquire()
            if showing_id not in self._answered:
                raise Refused(503, "the first submission of this item could not be stored; submit again")
        return Ack(showing_id, True, *self.assigner.progress(annotator))

    def _records(self, showing: Showing, request_id: str, answers: dict[str, str] | None,
                 skip_reason: str | None) -> list[Vote | Rating]:
        if answers is not None:
            missing = [c for c in self.criteria if c not in answers]
            extra = [c for c in answers if c not in self.criteria]
            if missing or extra:
                raise Refused(400, f"answer every criterion exactly: missing {missing}, unknown {extra}")
        latency = int((time.monotonic() - showing.issued) * 1000)
        now = utc_now()
        item = showing.item
        common = dict(showing_id=showing.showing_id, request_id=request_id, annotator=showing.annotator,
                      condition_id=item.condition_id, skip_reason=skip_reason if answers is None else None,
                      latency_ms=latency, created_at=now)
        records = []
        for criterion in self.criteria:
            answer = None if answers is None else answers[criterion]
            if self.mode == "ab":
                if answer is not None and answer not in AB_CHOICES:
                    raise Refused(400, f"{criterion}: {answer!r} is not one of {', '.join(AB_CHOICES)}")
                record = Vote(clip_a=item.clip_a, clip_b=item.clip_b, left=showing.left, criterion=criterion,
                              choice=answer or "skip", is_gold=item.is_gold, **common)
            else:
                score = _score(criterion, answer)
                record = Rating(clip=item.clip_a, criterion=criterion, score=score, **common)
            try:
                records.append(require_valid(record, "submission"))
            except Exception as exc:
                raise Refused(400, str(exc)) from None
        return records

    def condition(self, condition_id: str) -> Condition:
        """The condition record of an item."""
        return self._conditions[condition_id]

    def clip_media(self, sha256: str) -> str:
        """The campaign media path of a clip."""
        return self._clip_media[sha256]

    def progress(self, annotator: str) -> tuple[int, int]:
        """(finished, finished + available) for one annotator."""
        with self._lock:
            return self.assigner.progress(annotator)

    def campaign_progress(self) -> tuple[int, int]:
        """(answers collected towards overlap, answers the campaign needs)."""
        with self._lock:
            return self.assigner.total_progress()

    def close(self) -> None:
        """Release the journal."""
        self.journal.close()


def _score(criterion: str, answer: str | int | None) -> int | None:
    if answer is None:
        return None
    try:
        score = int(answer)
    except (TypeError, ValueError):
        raise Refused(400, f"{criterion}: {answer!r} is not a score from 1 to 5") from None
    if not 1 <= score <= 5:
        raise Refused(400, f"{criterion}: {score} is not a score from 1 to 5")
    return score
