"""`annotate serve`: the Gradio app over one campaign, behind the campaign's logins."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from annotate.ab_app import build_ab
from annotate.rating_app import build_rating
from annotate.admin_app import build_admin
from annotate.service import AnnotationService, Mode
from annotate.store import Campaign
from annotate.users import authenticate
from data_schemas import CRITERIA

_PLAYER_JS = (Path(__file__).parent / "player.js").read_text(encoding="utf-8")
CSS = """
.pd-pair { display: flex; gap: 12px; }
.pd-pair figure { flex: 1; margin: 0; text-align: center; }
.pd-pair video { width: 100%; max-width: 384px; image-rendering: pixelated; background: #000; }
.pd-reference { display: flex; gap: 12px; align-items: center; margin-bottom: 8px; }
.pd-reference img { width: 96px; image-rendering: pixelated; }
.pd-criterion.pd-active { outline: 2px solid #f97316; }
#pd-submit:disabled { opacity: 0.5; }
.pd-shortcuts { font-size: 0.9em; opacity: 0.8; }
"""


@dataclass(frozen=True)
class ServeOptions:
    """How `annotate serve` runs."""

    mode: Mode = "ab"
    criteria: tuple[str, ...] = CRITERIA
    overlap: int = 3
    gold_rate: float = 0.1
    show_scores: bool = False
    seed: int = 0


def media_url_for(campaign: Campaign):
    """Campaign media path → URL of Gradio's file route (only the campaign's media folder is allowed)."""
    def url(relative: str) -> str:
        return f"/gradio_api/file={campaign.media_file(relative).resolve()}"
    return url


def clip_scores(campaign: Campaign):
    """sha256 → {scorer/metric: value} from the campaign's current scores."""
    con = campaign.connect()

    def scores(sha256: str) -> dict[str, float]:
        rows = con.execute("SELECT scorer || '/' || metric, value FROM scores WHERE clip = ? AND value IS NOT NULL",
                           [sha256]).fetchall()
        return dict(rows)
    return scores


def build_app(campaign: Campaign, options: ServeOptions) -> tuple[gr.Blocks, AnnotationService]:
    """The Blocks app and the service behind it (the caller closes the service)."""
    service = AnnotationService(campaign, options.mode, options.criteria, options.overlap, options.gold_rate,
                                options.seed)
    with gr.Blocks(title="portrait-dpo annotation") as blocks:
        gr.Markdown("## portrait-dpo: which clip is better?")
        build_mode = build_ab if options.mode == "ab" else build_rating
        build_mode(blocks, service, media_url_for(campaign), clip_scores(campaign) if options.show_scores else None)
        build_admin(blocks, campaign, service)
    return blocks, service


def launch(campaign: Campaign, options: ServeOptions, host: str, port: int, block: bool = True):
    """Start the server (login against the campaign's enabled users)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    blocks, service = build_app(campaign, options)
    blocks.queue(default_concurrency_limit=None)
    result = blocks.launch(
        server_name=host, server_port=port, auth=lambda user, password: authenticate(campaign, user, password)
        is not None, auth_message="Log in with the account your campaign admin gave you.",
        allowed_paths=[str((campaign.root / "media").resolve())], prevent_thread_lock=not block, quiet=True,
        head=f"<script>{_PLAYER_JS}</script>", css=CSS, footer_links=["api"], ssr_mode=False,
    )
    return blocks, service, result
