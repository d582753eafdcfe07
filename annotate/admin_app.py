"""The Admin tab: campaign progress and time to completion, per criterion and per annotator tables (time per
item, gold accuracy, left-side rate, flags), under active assignment the candidates' current rankings with
their uncertainty, refreshed live, and the votes as Parquet.

Every handler checks the caller's role on the server; the tab is only sent to admins' pages, and its API
refuses everyone else (403).
"""

from __future__ import annotations

import os
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import gradio as gr
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from annotate.form import user_of
from annotate.service import AnnotationService
from annotate.users import annotators
from campaign.items import gold_answers
from campaign.retractions import JOURNAL as RETRACTIONS
from campaign.retractions import retracted_mask
from campaign.store import Campaign
from pairs.vote_stats import per_annotator, per_criterion

REFRESH_SECONDS = 5.0
LEFT_BIAS = 0.8  # a left-side rate above this (or below 1 − this) over enough votes is flagged
MIN_DECISIVE = 10  # A/B wins an annotator needs before position bias is flagged
GOLD_FLOOR = 0.6  # gold accuracy below this over enough gold votes is flagged
MIN_GOLD = 4


def is_admin(campaign: Campaign, name: str) -> bool:
    """Whether `name` is an enabled admin of the campaign."""
    account = annotators(campaign).get(name)
    return account is not None and account.role == "admin" and not account.disabled


def flags(row: dict[str, Any], min_seconds: float) -> str:
    """Why an annotator's work needs a look: faster than the clips last, gold missed, one side preferred."""
    found = []
    if row.get("seconds_per_item") is not None and row["seconds_per_item"] < min_seconds:
        found.append(f"fast ({row['seconds_per_item']:.1f} s/item)")
    if row.get("gold_accuracy") is not None and row.get("gold_votes", 0) >= MIN_GOLD and row["gold_accuracy"] < GOLD_FLOOR:
        found.append(f"gold {row['gold_accuracy']:.0%}")
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


def admin_report(campaign: Campaign, service: AnnotationService, votes: pa.Table | None = None) -> dict[str, Any]:
    """Every number of the admin tab, as JSON-ready data (retracted votes do not count); `votes` as
    `vote_journals` reads them (read here when not given)."""
    votes = vote_journals(campaign) if votes is None else votes
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


class VotesDownload:
    """The votes as one Parquet file, rewritten only when the votes or retractions journal changed since it was
    written (not on every 5 s refresh of every admin page)."""

    def __init__(self, campaign: Campaign, folder: Path) -> None:
        self.campaign, self.path = campaign, Path(folder) / "votes.parquet"
        self._written: tuple | None = None  # the journals' stamp the file was written at
        self._lock = threading.Lock()  # admin pages refresh concurrently

    def stamp(self) -> tuple:
        """(size, mtime, inode) of the votes and retractions journals (None where absent): changes with any append,
        cut or roll-over."""
        stamps = []
        for journal in ("votes", RETRACTIONS):
            try:
                info = os.stat(self.campaign.journal_path(journal))
            except FileNotFoundError:
                stamps.append(None)
                continue
            stamps.append((info.st_size, info.st_mtime_ns, info.st_ino))
        return tuple(stamps)

    def update(self, votes: pa.Table, stamp: tuple) -> Path:
        """The file, holding `votes` (as `vote_journals` read them after `stamp` was taken) or what was read at the
        same stamp; written whole, then renamed, so a download never gets half a file."""
        with self._lock:
            if stamp != self._written:
                partial = self.path.with_suffix(".partial")
                pq.write_table(votes, partial)
                os.replace(partial, self.path)
                self._written = stamp
        return self.path


def admin_refresh(campaign: Campaign, service: AnnotationService, download: VotesDownload,
                  shown: tuple | None) -> tuple[dict[str, Any], Path | None, tuple]:
    """One refresh of a page's admin tab: (report, the votes file or None when the page's copy is at `shown`,
    the journals' stamp now)."""
    stamp = download.stamp()  # before the read: a vote landing during it changes the next stamp
    votes = vote_journals(campaign)
    report = admin_report(campaign, service, votes)
    return report, (download.update(votes, stamp) if stamp != shown else None), stamp


def build_admin(blocks: gr.Blocks, campaign: Campaign, service: AnnotationService) -> None:
    """The Admin tab and its API, inside the open tab strip of `blocks`."""
    download = VotesDownload(campaign, Path(tempfile.mkdtemp(prefix="pd-admin-")))

    def require_admin(request: gr.Request) -> None:
        if not is_admin(campaign, user_of(request)):
            raise gr.Error("403: admins only")

    def admin_stats(request: gr.Request) -> dict[str, Any]:
        require_admin(request)
        return admin_report(campaign, service)

    with gr.Tab("Admin", id="admin", visible=False, render=True) as tab:
        gr.api(admin_stats, api_name="admin_stats")
        overview = gr.Markdown(elem_id="pd-admin-overview")
        criteria_table = gr.Dataframe(label="per criterion", interactive=False, elem_id="pd-admin-criteria")
        annotator_table = gr.Dataframe(label="per annotator", interactive=False, elem_id="pd-admin-annotators")
        ranking_table = gr.Dataframe(label="rankings (Bradley–Terry strength ± sd, auto-score prior)",
                                     interactive=False, elem_id="pd-admin-rankings")
        download_button = gr.DownloadButton("Download votes (Parquet)", value=None, elem_id="pd-admin-download")
        shown = gr.State(None)  # the journals' stamp of this page's votes file
        timer = gr.Timer(REFRESH_SECONDS, active=False)
    tables = [overview, criteria_table, annotator_table, ranking_table, download_button, shown]

    def show(shown_stamp: tuple | None, request: gr.Request):
        require_admin(request)
        report, votes_file, stamp = admin_refresh(campaign, service, download, shown_stamp)
        progress = report["progress"]
        share = progress["collected"] / progress["needed"] if progress["needed"] else 1.0
        pace = f"{progress['per_hour']:.0f} answers/hour" if progress["per_hour"] else "pace not known yet"
        text = (f"**Progress**: {progress['collected']} / {progress['needed']} answers ({share:.0%}) · {pace} · "
                f"time to completion: {progress['time_left'] or 'not known yet'}")
        return (text, _frame(report["criteria"], "no criteria"), _frame(report["annotators"], "no votes yet"),
                _frame(report["rankings"], "rankings are kept only under annotate serve --assign active"),
                gr.skip() if votes_file is None else str(votes_file), stamp)

    def reveal(shown_stamp: tuple | None, request: gr.Request):
        admin = is_admin(campaign, user_of(request))
        filled = show(shown_stamp, request) if admin else (gr.skip(),) * len(tables)
        return (gr.Tab(visible=admin), gr.Timer(active=admin), *filled)

    timer.tick(show, shown, tables, api_visibility="private", show_progress="hidden")
    blocks.load(reveal, shown, [tab, timer, *tables], api_visibility="private")


def _frame(rows: list[dict], empty: str) -> dict[str, Any]:
    if not rows:
        return {"headers": [empty], "data": [[""]]}
    # What a row is about first (condition, criterion, annotator, clip), then its numbers.
    about = ("condition_id", "criterion", "annotator", "clip")
    headers = sorted(rows[0], key=lambda h: about.index(h) if h in about else len(about))
    return {"headers": headers, "data": [[_cell(r[h]) for h in headers] for r in rows]}


def _cell(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else ("–" if value is None else value)
