"""The annotation service: the only thing the web app calls. It decides what is stored, never the UI.

- A showing is one item shown to one annotator, with the side each clip is on; its id is issued here,
  and it is journaled before it is shown, so after a restart the annotator gets it back, same id.
- A submission is stored (appended and fsynced) before it is acknowledged; the same showing submitted
  again (double click, retry, second tab) is acknowledged again and stored once. A submission the disk
  refuses is stored not at all and answered 503; the annotator can submit it again.
- The annotator is always the authenticated user passed in by the server; a showing belongs to the
  annotator it was issued to, and nobody else can answer it.
- Answers come as the annotator gave them (left / right as shown, or a score); the task's mode checks
  them and turns them into records. A skip reason is stored once per showing, on its first row.
- Segment marks come with the answers and are checked with them: a submission with one bad mark stores
  nothing. They are appended (to the marks journal) before the answers and once per request, so a retry
  after a refused write does not store them twice (it keeps the marks first written); they count only
  beside their answers (campaign.marks).
- A new annotator first answers `practice` gold items: their answers go to the practice journal (never the
  votes), each acknowledgement carries the known answers (annotate/practice.py), and a restart knows from that
  journal who has finished. A practice submission keeps no segment marks and cannot be undone. After practice,
  a gold vote's acknowledgement carries the known answers only when the task's `gold_feedback` is on; such a
  vote cannot be undone either.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from annotate.assignment import assigner_for
from annotate.modes import mode_of
from annotate.practice import answer_feedback, practice_answer
from annotate.segment_marks import mark_records
from annotate.showing import SHOWINGS, Refused, Showing, last_issued, quoted, reissued
from campaign.items import Item
from campaign.journal import AppendFailed, JournalWriter
from campaign.marks import JOURNAL as MARKS, marks as stored_marks
from campaign.practice import JOURNAL as PRACTICE, practice_answers
from campaign.retractions import JOURNAL as RETRACTIONS, retracted_view
from campaign.store import JOURNALS, Campaign
from campaign.task import require_servable
from data_schemas import (
    AnnotationTask, Condition, PracticeAnswer, Retraction, SegmentMark, arrow_schema, from_table, utc_now, validate,
)
from data_schemas.records import ID_PATTERN, IssuedShowing

MAX_REASON = 500  # characters of a skip reason kept
REPLAY_ROWS = 100_000  # showings a restart turns into Python objects at a time
UNDO_SECONDS = 60  # how long after a submission its annotator may take it back


@dataclass(frozen=True)
class Ack:
    """The answer to a submission: stored now, or already stored before (a repeat)."""

    showing_id: str
    repeated: bool
    done: int  # items this annotator has finished
    available: int  # finished + still available to them
    practice: bool = False  # a practice answer: stored, but not a vote
    feedback: tuple[dict[str, Any], ...] = ()  # a gold item's known answers beside the given ones (practice.py)


class AnnotationService:
    """Holds the assignment state and the journal for one campaign and its annotation task."""

    def __init__(self, campaign: Campaign, task: AnnotationTask, seed: int = 0) -> None:
        self.campaign, self.task = campaign, require_servable(task, "annotation task")
        self.mode = mode_of(task)
        self.criteria = tuple(task.criteria)
        self.assigner = assigner_for(task, self.mode.items(campaign, self.criteria), campaign, seed)
        self._conditions = {c.condition_id: c for c in from_table(campaign.table("conditions"), Condition)}
        # Read once, here: the page's clip facts (annotation_app.ClipFacts) are built from this table too.
        self.clips = campaign.table("clips").select(["sha256", "media_path", "fps", "duration", "width", "height"])
        clips = self.clips.to_pydict()
        self._clip_media = dict(zip(clips["sha256"], clips["media_path"]))
        self._clip_duration = dict(zip(clips["sha256"], clips["duration"]))
        self._lock = threading.Lock()
        self._changes = 0  # counts stored answers and undos: the admin report is current while it stays the same
        self._open: dict[str, Showing] = {}  # showing id → showing not yet answered
        self._current: dict[str, str] = {}  # annotator → their open showing id
        self._answered: dict[str, tuple[str, str]] = {}  # showing id → (annotator, request id)
        # (annotator, request id) of every stored submission: an id is the annotator's own, so one annotator's ids
        # neither block another's nor tell them which ids were used.
        self._requests: set[tuple[str, str]] = set()
        self._writing: dict[str, threading.Event] = {}  # showing id → set once its records are on disk
        self._issuing: dict[str, threading.Lock] = {}  # annotator → held while their next showing is journaled
        self._rng = secrets.SystemRandom()
        self._last: dict[str, tuple[Showing, float]] = {}  # annotator → their last submission, when stored
        self._told: dict[str, dict[str, Any]] = {}  # showing id → what its acknowledgement adds (practice, feedback)
        # (showing id, request id) whose marks are on disk: a retry of a refused answer does not write them again.
        marked = stored_marks(campaign).select(["showing_id", "request_id"]).to_pydict()
        self._marked: set[tuple[str, str]] = set(zip(marked["showing_id"], marked["request_id"]))
        self._replay_journal()
        # Every pair valued now, after the replayed votes (which make their conditions stale), not inside the first
        # annotator's request: seconds at 15 000 pairs.
        self.assigner.prepare()
        self._replay_practice()
        self.journal = JournalWriter(campaign.journal_path(self.mode.journal), self.mode.record_type)
        self.practice_journal = JournalWriter(campaign.journal_path(PRACTICE), PracticeAnswer)
        self._resume_showings()
        self.showings = JournalWriter(campaign.journal_path(SHOWINGS), IssuedShowing)
        self.retractions = JournalWriter(campaign.journal_path(RETRACTIONS), Retraction)
        self.marks = JournalWriter(campaign.journal_path(MARKS), SegmentMark)

    def _replay_journal(self) -> None:
        """Rebuild who finished what from the journal, so a restart resumes everyone where they were."""
        by_key = {self.mode.item_key(i): i for i in self.assigner.items.values()}
        showings = journal_showings(self.campaign, self.mode.journal, self.mode.key_columns, self.mode.answer_column)
        # In slices: a showing's answers as Python objects for REPLAY_ROWS showings at a time, not for 10 M votes.
        for start in range(0, showings.num_rows, REPLAY_ROWS):
            part = showings.slice(start, REPLAY_ROWS)
            keys = zip(*(part[k].to_pylist() for k in self.mode.key_columns))
            for showing_id, request_id, annotator, key, skipped, retracted, criteria, answers in zip(
                    *(part[c].to_pylist() for c in ("showing_id", "request_id", "annotator")), keys,
                    *(part[c].to_pylist() for c in ("skipped", "retracted", "criteria", "answers"))):
                self._answered[showing_id] = (annotator, request_id)
                self._requests.add((annotator, request_id))
                item = by_key.get(key)
                if item is not None and not retracted:  # undone: the item is open again
                    self.assigner.record(annotator, item.item_id, skipped, dict(zip(criteria, answers)))

    def _replay_practice(self) -> None:
        """Rebuild who practised on what, so a restart neither repeats a finished practice round nor counts it."""
        by_key = {(i.clip_a, i.clip_b): i for i in self.assigner.gold}
        showings: dict[str, list] = {}
        for row in practice_answers(self.campaign).to_pylist():
            showings.setdefault(row["showing_id"], []).append(row)
        for showing_id, rows in showings.items():
            first = rows[0]
            self._answered[showing_id] = (first["annotator"], first["request_id"])
            self._requests.add((first["annotator"], first["request_id"]))
            item = by_key.get((first["clip_a"], first["clip_b"]))
            if item is not None:
                self.assigner.record_practice(first["annotator"], item.item_id)
                choices = {r["criterion"]: r["choice"] for r in rows}
                self._told[showing_id] = self._acknowledged(item, first["left"], choices, practice=True)

    def _resume_showings(self) -> None:
        """Give each annotator back the showing they had open before a restart, under the same id."""
        for annotator, record in last_issued(self.campaign).items():
            item = self.assigner.items.get(record.item_id)
            if (record.showing_id in self._answered or item is None or item.item_id in self.assigner.seen[annotator]
                    or record.practice != self.assigner.in_practice(annotator)):
                continue  # answered, not an item of this task, or practice is over (or was asked since)
            showing = reissued(record, item)
            self._open[showing.showing_id] = showing
            self._current[annotator] = showing.showing_id
            self.assigner.show(annotator, item.item_id)  # as next_item marks an item it hands out

    # -- serving -------------------------------------------------------------------------------------

    def next_showing(self, annotator: str) -> Showing | None:
        """The annotator's open showing if they have one (a reload resumes it), else a new one; None when done."""
        with self._lock:
            issuing = self._issuing.setdefault(annotator, threading.Lock())
        # One annotator's requests wait for each other (a second gets the showing the first made); the fsync
        # below happens outside the service lock, so other annotators' requests never wait for this disk.
        with issuing:
            with self._lock:
                current = self._current.get(annotator)
                if current is not None:
                    return self._open[current]
                practice = self.assigner.in_practice(annotator)
                item = self.assigner.next_item(annotator)  # marked as being shown: nobody else takes it over overlap
                if item is None:
                    return None
            showing = Showing(secrets.token_hex(12), annotator, item, self._rng.choice("ab"), time.monotonic(),
                              practice)
            try:
                self.showings.append([showing.record()])  # on disk before it is seen: a restart shows it again
            except AppendFailed as exc:
                with self._lock:
                    self.assigner.release(annotator, item.item_id)
                raise Refused(503, f"could not record the next item ({exc}); try again in a moment") from None
            with self._lock:
                self._open[showing.showing_id] = showing
                self._current[annotator] = showing.showing_id
            return showing

    def _owned(self, annotator: str, showing_id: str) -> Showing:
        showing = self._open.get(showing_id)
        if showing is None:
            raise Refused(404, f"showing {quoted(showing_id)} is not open; load the next item")
        if showing.annotator != annotator:
            raise Refused(403, "this item is assigned to another annotator")
        return showing

    def submit(
        self,
        annotator: str,
        showing_id: str,
        request_id: str,
        answers: dict[str, Any] | None,
        skip_reason: str | None = None,
        marks: list[dict[str, Any]] | None = None,
    ) -> Ack:
        """Store one answer per criterion (or a skip when `answers` is None) and the segment marks that come with
        them ([{clip: left | right, criterion, start_s, end_s}]) durably, then acknowledge."""
        with self._lock:
            if not isinstance(request_id, str) or not re.fullmatch(ID_PATTERN, request_id):
                raise Refused(400, f"request id {quoted(request_id)}: use 1–128 letters, digits, '.', '_' or '-'")
            if showing_id in self._answered:
                return self._repeat(annotator, showing_id, request_id)
            showing = self._owned(annotator, showing_id)
            if (annotator, request_id) in self._requests:
                raise Refused(409, f"request id {quoted(request_id)}: you used it for another submission")
            records = self._records(showing, request_id, answers, skip_reason)
            if answers is None and marks:
                raise Refused(400, "marks come with answers: a skip stores none; remove them or answer the item")
            mark_rows = mark_records(self.mode, showing, marks, self._clip_duration, self.criteria,
                                     **_shared(records[0]))
            if showing.practice:  # practice counts nowhere, so its marks would not either: checked, none kept
                records, mark_rows = [practice_answer(r, showing.item) for r in records], []
            marked = (showing_id, request_id) in self._marked
            # Reserve before writing, so a concurrent repeat of this showing waits for our answer.
            self._answered[showing_id] = (annotator, request_id)
            self._requests.add((annotator, request_id))
            written = self._writing[showing_id] = threading.Event()
            del self._open[showing_id]
            self._current.pop(annotator, None)
        try:
            if mark_rows and not marked:
                self.marks.append(mark_rows)  # before the answers: they count only beside a stored answer
                with self._lock:
                    self._marked.add((showing_id, request_id))
            (self.practice_journal if showing.practice else self.journal).append(records)
        except BaseException as exc:
            with self._lock:  # not on disk: undo the reservation so the annotator can submit again
                self._changes += 1  # written and cut back: a report read meanwhile may have counted it
                del self._answered[showing_id]
                self._requests.discard((annotator, request_id))
                self._open[showing_id] = showing
                self._current[annotator] = showing_id
            if isinstance(exc, AppendFailed):
                raise Refused(503, f"could not store the answer ({exc}); nothing of it was saved: "
                                   "submit again in a moment") from None
            raise
        finally:
            with self._lock:  # only this submission's own: a retry may have reserved the showing meanwhile
                if self._writing.get(showing_id) is written:
                    del self._writing[showing_id]
            written.set()
        choices = {r.criterion: getattr(r, self.mode.answer_column) for r in records}
        with self._lock:
            if showing.practice:
                self.assigner.record_practice(annotator, showing.item.item_id)
            else:
                self.assigner.record(annotator, showing.item.item_id, skipped=answers is None, choices=choices)
                self._last[annotator] = (showing, time.monotonic())
                self._changes += 1  # after the journal and the assigner: a report read at the old count is stale
            told = self._acknowledged(showing.item, showing.left, choices, showing.practice)
            if told:  # kept for a repeat of this submission, which is acknowledged the same way
                self._told[showing_id] = told
            return Ack(showing_id, False, *self.assigner.progress(annotator), **told)

    def _acknowledged(self, item: Item, left: str, choices: dict[str, Any], practice: bool) -> dict[str, Any]:
        """What an acknowledgement adds to the progress: that it was practice, and the known answers of a gold
        item when it was practice or the task gives gold feedback; nothing for any other answer."""
        told: dict[str, Any] = {"practice": True} if practice else {}
        if item.is_gold and (practice or self.task.gold_feedback):
            told["feedback"] = tuple(answer_feedback(item, left, choices, self.criteria, self.task.definitions))
        return told

    def _repeat(self, annotator: str, showing_id: str, request_id: str) -> Ack:
        """A showing submitted again: a retry (the same request id) is acknowledged once the first submission is on
        disk; another submission of it is refused, as its first answers are the ones kept. Holds the lock."""
        owner, _ = self._answered[showing_id]
        if owner != annotator:
            raise Refused(403, "this item is assigned to another annotator")
        # Until no submission of it is being written: a failed one may have been followed by another's reservation.
        while (written := self._writing.get(showing_id)) is not None:
            self._lock.release()
            try:
                written.wait()
            finally:
                self._lock.acquire()
        if showing_id not in self._answered:
            raise Refused(503, "the first submission of this item could not be stored; submit again")
        if self._answered[showing_id][1] != request_id:
            raise Refused(409, "this item was already answered under another request id; its first answers are "
                               "kept: load the next item")
        return Ack(showing_id, True, *self.assigner.progress(annotator), **self._told.get(showing_id, {}))

    def _records(self, showing: Showing, request_id: str, answers: dict[str, Any] | None,
                 skip_reason: str | None) -> list[Any]:
        if answers is not None:
            if not isinstance(answers, dict):
                raise Refused(400, "answers must be an object {criterion: answer}, or null to skip")
            missing = [c for c in self.criteria if c not in answers]
            extra = [quoted(c) for c in answers if c not in self.criteria][:3]
            if missing or extra:
                raise Refused(400, f"answer every criterion exactly: missing {', '.join(missing) or 'none'}, "
                                   f"unknown {', '.join(extra) or 'none'}")
        common = dict(showing_id=showing.showing_id, request_id=request_id, annotator=showing.annotator,
                      condition_id=showing.item.condition_id,
                      latency_ms=int((time.monotonic() - showing.issued) * 1000), created_at=utc_now())
        reason = clean_reason(skip_reason) if answers is None else None
        records = []
        for index, criterion in enumerate(self.criteria):
            answer = None if answers is None else self.mode.stored_answer(showing, criterion, answers[criterion])
            # One reason per showing, not a copy per criterion: it goes on the first row only.
            record = self.mode.record(showing, criterion, answer, skip_reason=reason if index == 0 else None,
                                      **common)
            problems = validate(record)
            if problems:
                raise Refused(400, "; ".join(problems))
            records.append(record)
        return records

    def retract(self, annotator: str, showing_id: str) -> Showing:
        """Take back the annotator's last submission within UNDO_SECONDS and show its item again.

        A Retraction record is appended and fsynced (the votes stay in their journal, no longer counted);
        the item they had moved on to goes back to the pool.
        """
        with self._lock:
            last = self._last.get(annotator)
            if last is None or last[0].showing_id != showing_id:
                raise Refused(409, "only your last submission can be undone")
            showing, stored = last
            if "feedback" in self._told.get(showing_id, {}):  # undone, it would be answered again knowing the answer
                raise Refused(409, "the known answers of this gold item were shown: its vote cannot be undone")
            if time.monotonic() - stored > UNDO_SECONDS:
                raise Refused(409, f"too late: a submission can be undone for {UNDO_SECONDS} s")
            record = Retraction(showing_id=showing_id, annotator=annotator, journal=self.mode.journal)
            problems = validate(record)
            if problems:
                raise Refused(400, "; ".join(problems))
            try:
                self.retractions.append([record])
            except AppendFailed as exc:
                raise Refused(503, f"could not store the undo ({exc}); the answer still counts: try again") from None
            del self._last[annotator]
            current = self._current.pop(annotator, None)
            if current is not None:
                self.assigner.release(annotator, self._open.pop(current).item.item_id)
            self.assigner.reopen(annotator, showing.item.item_id)
            self._changes += 1
            again = Showing(secrets.token_hex(12), annotator, showing.item, showing.left, time.monotonic())
            with contextlib.suppress(AppendFailed):  # the undo is stored; unrecorded, a restart shows another item
                self.showings.append([again.record()])
            self._open[again.showing_id] = again
            self._current[annotator] = again.showing_id
            return again

    def condition(self, condition_id: str) -> Condition:
        """The condition record of an item."""
        return self._conditions[condition_id]

    def clip_media(self, sha256: str) -> str:
        """The campaign media path of a clip."""
        return self._clip_media[sha256]

    def open_showing(self, annotator: str) -> Showing | None:
        """The showing the annotator has open now, if any."""
        with self._lock:
            current = self._current.get(annotator)
            return None if current is None else self._open.get(current)

    def progress(self, annotator: str) -> tuple[int, int]:
        """(finished, finished + available) for one annotator."""
        with self._lock:
            return self.assigner.progress(annotator)

    def rankings(self) -> list[dict]:
        """The candidates' current order per condition and criterion with its uncertainty, for the admin console:
        rows of condition_id, criterion, clip, rank (1 = best), strength and strength_sd (Bradley–Terry logits),
        prior (from the auto-score) and votes; empty under round-robin assignment, which keeps no model."""
        with self._lock:
            return self.assigner.rankings()

    def practice_progress(self, annotator: str) -> tuple[int, int]:
        """(practice items answered, practice items asked: 0 when there is no practice) for one annotator."""
        with self._lock:
            return len(self.assigner.practiced[annotator]), self.assigner.practice

    @property
    def changes(self) -> int:
        """How many answers and undos were stored since the service started: what the admin report depends on."""
        with self._lock:
            return self._changes

    def campaign_progress(self) -> tuple[int, int]:
        """(answers collected towards overlap, answers the campaign needs)."""
        with self._lock:
            return self.assigner.total_progress()

    def close(self) -> None:
        """Release the journals."""
        self.journal.close()
        self.practice_journal.close()
        self.retractions.close()
        self.showings.close()
        self.marks.close()


def journal_showings(campaign: Campaign, journal: str, key_columns: tuple[str, ...], answer: str) -> pa.Table:
    """One row per showing of a votes or ratings journal: its request id, annotator and item key (the same on each
    of its records), whether every answer is a skip, whether its annotator retracted it, and its criteria and
    answers (lists, in the same order). Grouped by DuckDB, which reads only these columns of the sealed segments:
    at 10 M votes the whole journal as Arrow, then as Python rows, took 60 s and 6 GB of a restart."""
    skip = f'j."{answer}" IS NULL'
    if pa.types.is_string(arrow_schema(JOURNALS[journal]).field(answer).type):
        skip += f" OR j.\"{answer}\" = 'skip'"
    keys = "".join(f', any_value(j."{k}") AS "{k}"' for k in key_columns)
    with campaign.connect() as con:
        retracted = retracted_view(con, campaign, journal)
        # Both lists ordered by criterion, so they pair; showings in the order they were stored, so a restart
        # records them as the live server did (the active posterior sums its outcomes in that order).
        return con.sql(f"""
            SELECT j.showing_id, any_value(j.request_id) AS request_id, any_value(j.annotator) AS annotator{keys},
                   bool_and({skip}) AS skipped, bool_or(r.showing_id IS NOT NULL) AS retracted,
                   list(j.criterion ORDER BY j.criterion) AS criteria,
                   list(j."{answer}" ORDER BY j.criterion) AS answers
            FROM {journal} j
            LEFT JOIN (SELECT DISTINCT showing_id, annotator FROM {retracted}) r
              ON j.showing_id = r.showing_id AND j.annotator = r.annotator
            GROUP BY j.showing_id
            ORDER BY min(j.created_at), j.showing_id""").to_arrow_table()


def _shared(record: Any) -> dict[str, Any]:
    """The fields a submission's marks share with its answers."""
    names = ("showing_id", "request_id", "annotator", "condition_id", "created_at")
    return {name: getattr(record, name) for name in names}


def clean_reason(reason: Any) -> str | None:
    """A skip reason as stored: text without control characters, at most MAX_REASON characters; None if empty."""
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise Refused(400, "skip_reason must be text")
    # Whitespace (line breaks, tabs) becomes single spaces; other control characters (NUL, terminal escapes) go.
    text = "".join(ch for ch in reason if ch.isspace() or unicodedata.category(ch) != "Cc")
    return " ".join(text.split())[:MAX_REASON] or None
