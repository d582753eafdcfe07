"""Admin tab: progress, votes per hour, gold accuracy, tie and skip rates, agreement, votes download.

Every handler checks the caller's role on the server; hiding the tab from annotators is only cosmetic.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pyarrow.parquet as pq

from annotate.form import user_of
from campaign.items import gold_answers
from pairs.vote_stats import per_annotator, per_criterion
from annotate.service import AnnotationService
from campaign.store import Campaign
from annotate.users import annotators


def is_admin(campaign: Campaign, name: str) -> bool:
    """Whether `name` is an enabled admin of the campaign."""
    account = annotators(campaign).get(name)
    return account is not None and account.role == "admin" and not account.disabled


def admin_report(campaign: Campaign, service: AnnotationService) -> dict[str, Any]:
    """Every number of the admin tab, as JSON-ready data."""
    votes = campaign.table("votes")
    collected, needed = service.campaign_progress()
    gold = gold_answers(list(service.assigner.items.values()))
    return {
        "progress": {"collected": collected, "needed": needed},
        "criteria": per_criterion(votes, service.criteria),
        "annotators": per_annotator(votes, gold),
    }


def build_admin(blocks: gr.Blocks, campaign: Campaign, service: AnnotationService) -> None:
    """The admin tab and its API, inside the open `blocks`."""
    downloads = Path(tempfile.mkdtemp(prefix="pd-admin-"))

    def require_admin(request: gr.Request) -> None:
        if not is_admin(campaign, user_of(request)):
            raise gr.Error("403: admins only")

    def admin_stats(request: gr.Request) -> dict[str, Any]:
        require_admin(request)
        return admin_report(campaign, service)

    gr.api(admin_stats, api_name="admin_stats")

    with gr.Tab("Admin", visible=False) as tab:
        refresh = gr.Button("Refresh")
        overview = gr.Markdown()
        criteria_table = gr.Dataframe(label="per criterion", interactive=False)
        annotator_table = gr.Dataframe(label="per annotator", interactive=False)
        download = gr.DownloadButton("Download votes (Parquet)", value=None)

    def show(request: gr.Request):
        report = admin_stats(request)
        votes_file = downloads / "votes.parquet"
        pq.write_table(campaign.table("votes"), votes_file)
        progress = report["progress"]
        share = progress["collected"] / progress["needed"] if progress["needed"] else 1.0
        text = f"**Progress**: {progress['collected']} / {progress['needed']} answers ({share:.0%})"
        return (text, _frame(report["criteria"]), _frame(report["annotators"]), str(votes_file))

    refresh.click(show, None, [overview, criteria_table, annotator_table, download], api_visibility="private")

    def reveal(request: gr.Request):
        return gr.Tab(visible=is_admin(campaign, user_of(request)))

    blocks.load(reveal, None, tab, api_visibility="private")


def _frame(rows: list[dict]) -> dict[str, Any]:
    if not rows:
        return {"headers": ["(no votes yet)"], "data": [[""]]}
    headers = list(rows[0])
    return {"headers": headers, "data": [[_cell(r[h]) for h in headers] for r in rows]}


def _cell(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else ("–" if value is None else value)
