"""The Admin tab: campaign progress and time to completion, per criterion and per annotator tables (time per
item, gold accuracy, left-side rate, flags), under active assignment the candidates' current rankings with
their uncertainty, refreshed live, and the votes as Parquet (`GET /admin/votes.parquet`).

Every handler checks the caller's role on the server; the tab is only sent to admins' pages, and its API
refuses everyone else (403).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import duckdb
import gradio as gr
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from annotate.form import user_error, user_of
from annotate.service import AnnotationService
from annotate.users import annotators
from campaign.items import gold_answers
from campaign.retractions import retracted_mask
from campaign.store import Campaign
from data_schemas import utc_now
from pairs.vote_stats import per_annotator, per_criterion

REFRESH_SECONDS = 5.0
LEFT_BIAS = 0.8  # a left-side rate above this (or below 1 − this) over enough votes is flagged
MIN_DECISIVE = 10  # A/B wins an annotator needs before position bias is flagged
GOLD_FLOOR = 0.6  # gold accuracy below this over enough gold votes is flagged
MIN_GOLD = 4
PACE = 4.0  # a timed refresh computes anew no sooner than this many times the last computation took, from its start


def is_admin(campaign: Campaign, name: str) -> bool:
    """Whether `name` is an enabled admin of the campaign."""
    account = annotators(campaign).get(name)
    return account is not None and account.role == "admin" and not account.disabled


def flags(row: dict[str, Any], min_seconds: float) -> str:
    """Why an annotator's work needs a look: faster than the clips last, gold missed, one side preferred."""
    found = []
    if row.get("seconds_per_item") is not None and row["seconds_per_item"] < min_seconds:
        found.append(f"fast ({row['seconds_per_item']:.1f} s/item)")
    gold = row.get("gold_accuracy")
    if gold is not None and row.get("gold_votes", 0) >= MIN_GOLD and gold < GOLD_FLOOR:
        found.append(f"gold {gold:.0%}")
    left = row.get("left_rate")
    if left is not None and row.get("decisive", 0) >= MIN_DECISIVE and not 1 - LEFT_BIAS <= left <= LEFT_BIAS:
        found.append(f"left side {left:.0%}")
    return "; ".join(found)


def completion(votes: pa.Table, collected: int, needed: int) -> dict[str, Any]:
    """Answers collected and needed, the pace so far (answered showings per hour) and the time left at it."""
    rows = votes.filter(pc.not_equal(votes.column("choice"), "skip")).select(["showing_id", "created_at"])
    # When each answered showing was first stored, in Arrow: a Python loop over every vote took most of a refresh.
    first = rows.group_by("showing_id").aggregate([("created_at", "min")]).column("created_at_min")
    answered = len(first)
    hours = (pc.max(first).as_py() - pc.min(first).as_py()).total_seconds() / 3600 if answered > 1 else 0.0
    per_hour = (answered - 1) / hours if hours > 0 else None
    left = max(needed - collected, 0)
    eta = None if not left else (str(timedelta(seconds=round(left / per_hour * 3600))) if per_hour else None)
    return {"collected": collected, "needed": needed, "per_hour": per_hour, "time_left": eta if left else "done"}


def vote_journals(campaign: Campaign) -> pa.Table:
    """The votes with a `retracted` column (undone by their annotator): the votes and retractions journals, each
    read once."""
    votes = campaign.table("votes")
    return votes.append_column("retracted", retracted_mask(campaign, "votes", votes))


def admin_report(campaign: Campaign, service: AnnotationService) -> dict[str, Any]:
    """Every number of the admin tab, as JSON-ready data (retracted votes do not count)."""
    votes = vote_journals(campaign)
    votes = votes.filter(pc.invert(votes.column("retracted"))).drop_columns(["retracted"])
    collected, needed = service.campaign_progress()
    gold = gold_answers(list(service.assigner.items.values()))
    # The served clips' median duration from the table the service read, in Arrow: not every clip read again and
    # listed in Python per refresh (midpoint: the mean of the middle two of an even count, as statistics.median).
    durations = service.clips.column("duration")
    durations = durations.filter(pc.not_equal(durations, 0.0))  # no duration: null or 0
    min_seconds = pc.quantile(durations, q=0.5, interpolation="midpoint")[0].as_py() if len(durations) else 0.0
    con = duckdb.connect()
    con.register("votes", votes)
    rows = per_annotator(con, "votes", gold)
    decided = votes.filter(pc.is_in(votes.column("choice"), pa.array(["a", "b"]))).group_by("annotator").aggregate(
        [("choice", "count")])  # A/B wins per annotator in Arrow, not a Python loop over every vote per refresh
    decisive = dict(zip(decided.column("annotator").to_pylist(), decided.column("choice_count").to_pylist()))
    annotator_rows = [{**row, "decisive": decisive.get(row["annotator"], 0)} for row in rows]
    return {
        "progress": completion(votes, collected, needed),
        "criteria": per_criterion(con, "votes", service.criteria),
        "annotators": [{**row, "flags": flags(row, min_seconds)} for row in annotator_rows],
        "rankings": service.rankings(),
    }


class SharedReport:
    """The admin report that every admin page and the API share, computed again only after an answer or an undo
    was stored (`AnnotationService.changes`). A page's timed refresh may also get the last report until PACE times
    its computing time has passed since that computation began, or while another is under way: at millions of
    votes a report takes many seconds, and pages refreshing every REFRESH_SECONDS would otherwise keep the
    server's cores busy. Explicit requests (a page opening, the API) wait for a current report; every report says
    when its computation began (`as_of`) and how long it took (`compute_seconds`)."""

    def __init__(self, campaign: Campaign, service: AnnotationService,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.campaign, self.service, self._clock = campaign, service, clock
        self._lock = threading.Lock()  # one computation at a time; pages that ask meanwhile get its result
        self._report: dict[str, Any] | None = None
        self._changes, self._made, self._pause = -1, 0.0, 0.0

    def get(self, timed: bool = False) -> dict[str, Any]:
        """The current report; with `timed` (a page's periodic refresh) the last one while it is paced."""
        if not self._lock.acquire(blocking=not timed or self._report is None):
            return self._report  # one is being computed: the tick shows the last, the next tick the new one
        try:
            changes = self.service.changes  # before the read: an answer stored during it makes the next get read
            paced = timed and self._clock() - self._made < self._pause
            if self._report is None or (changes != self._changes and not paced):
                began, as_of = self._clock(), utc_now().isoformat(timespec="seconds")
                report = admin_report(self.campaign, self.service)
                took = self._clock() - began
                self._report = {**report, "as_of": as_of, "compute_seconds": round(took, 3)}
                self._changes, self._made, self._pause = changes, began, PACE * took
            return self._report
        finally:
            self._lock.release()


def votes_download(campaign: Campaign, viewer: Callable[[Request], str | None]) -> APIRouter:
    """`GET /admin/votes.parquet`: the votes with their `retracted` column, written when an admin asks (the page's
    login or a JSON-API token, as `viewer(request)` names them) and deleted once sent; one file is built at a time
    (at 10 M votes each holds the votes in memory once)."""
    router = APIRouter()
    building = threading.Lock()
    name = f"{campaign.root.resolve().name}-votes.parquet"

    @router.get("/admin/votes.parquet")
    def votes_file(request: Request) -> FileResponse:
        user = viewer(request)
        if user is None:
            raise HTTPException(401, "log in first (the page, or Authorization: Bearer TOKEN)")
        if not is_admin(campaign, user):
            raise HTTPException(403, "admins only")
        with building:
            votes = vote_journals(campaign)
            folder = Path(tempfile.mkdtemp(prefix="pd-votes-"))
            try:
                pq.write_table(votes, folder / "votes.parquet")
            except BaseException as exc:  # keep nothing half-written; a full temporary disk says where
                shutil.rmtree(folder, ignore_errors=True)
                if not isinstance(exc, OSError):
                    raise
                raise HTTPException(507, f"could not write the votes file in {folder.parent} ({exc.strerror}); free "
                                         "space there or set TMPDIR to a disk with room") from None
        return FileResponse(folder / "votes.parquet", filename=name, headers={"Cache-Control": "no-store"},
                            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
    return router


def build_admin(blocks: gr.Blocks, campaign: Campaign, reports: SharedReport) -> None:
    """The Admin tab and its API (`reports` shared with the JSON API), inside the open tab strip of `blocks`."""

    def require_admin(request: gr.Request) -> None:
        if not is_admin(campaign, user_of(request)):
            raise user_error("403: admins only")

    def admin_stats(request: gr.Request) -> dict[str, Any]:
        require_admin(request)
        return reports.get()

    with gr.Tab("Admin", id="admin", visible=False, render=True) as tab:
        gr.api(admin_stats, api_name="admin_stats")
        overview = gr.Markdown(elem_id="pd-admin-overview")
        criteria_table = gr.Dataframe(label="per criterion", interactive=False, elem_id="pd-admin-criteria")
        annotator_table = gr.Dataframe(label="per annotator", interactive=False, elem_id="pd-admin-annotators")
        ranking_table = gr.Dataframe(label="rankings (Bradley–Terry strength ± sd, auto-score prior)",
                                     interactive=False, elem_id="pd-admin-rankings")
        # A link, not a Gradio file: Gradio would hash and copy the whole votes file into its cache on every
        # refresh after a vote, and never delete the copies.
        gr.HTML('<a id="pd-admin-download" href="admin/votes.parquet" download>Download votes (Parquet)</a>')
        timer = gr.Timer(REFRESH_SECONDS, active=False)
    tables = [overview, criteria_table, annotator_table, ranking_table]

    def filled(report: dict[str, Any]) -> tuple:
        progress = report["progress"]
        share = progress["collected"] / progress["needed"] if progress["needed"] else 1.0
        pace = f"{progress['per_hour']:.0f} answers/hour" if progress["per_hour"] else "pace not known yet"
        text = (f"**Progress**: {progress['collected']} / {progress['needed']} answers ({share:.0%}) · {pace} · "
                f"time to completion: {progress['time_left'] or 'not known yet'} · as of {report['as_of'][11:19]} UTC")
        return (text, _frame(report["criteria"], "no criteria"), _frame(report["annotators"], "no votes yet"),
                _frame(report["rankings"], "rankings are kept only under annotate serve --assign active"))

    def tick(request: gr.Request):
        require_admin(request)
        return filled(reports.get(timed=True))

    def reveal(request: gr.Request):
        admin = is_admin(campaign, user_of(request))
        return (gr.Tab(visible=admin), gr.Timer(active=admin),
                *(filled(reports.get()) if admin else (gr.skip(),) * len(tables)))

    timer.tick(tick, None, tables, api_visibility="private", show_progress="hidden")
    blocks.load(reveal, None, [tab, timer, *tables], api_visibility="private")


def _frame(rows: list[dict], empty: str) -> dict[str, Any]:
    if not rows:
        return {"headers": [empty], "data": [[""]]}
    # What a row is about first (condition, criterion, annotator, clip), then its numbers.
    about = ("condition_id", "criterion", "annotator", "clip")
    headers = sorted(rows[0], key=lambda h: about.index(h) if h in about else len(about))
    return {"headers": headers, "data": [[_cell(r[h]) for h in headers] for r in rows]}


def _cell(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else ("–" if value is None else value)
