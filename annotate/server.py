"""`annotate serve`: the Gradio app over one campaign and its task, behind the campaign's logins."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.routing import Mount

from annotate.admin_app import build_admin
from annotate.annotation_app import build_annotation, item_payload, store_answers
from annotate.http_guards import RequestGuard, malformed_body
from annotate.login_throttle import LoginThrottle
from annotate.rest_api import rest_api
from annotate.service import AnnotationService
from annotate.sessions import Accounts, Sessions
from annotate.settings import ServerSettings
from annotate.users import authenticate
from campaign.store import Campaign
from data_schemas import AnnotationTask, UserError

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


def media_url_for(campaign: Campaign):
    """Campaign media path → URL of Gradio's file route (only the campaign's media folder is allowed)."""
    root = campaign.root.resolve()  # once, not per URL: media_file has already refused anything but media/…

    def url(relative: str) -> str:
        campaign.media_file(relative)
        return f"/gradio_api/file={root / relative}"
    return url


def clip_scores(campaign: Campaign):
    """sha256 → {scorer/metric: value} from the campaign's current scores."""
    con = campaign.connect()

    def scores(sha256: str) -> dict[str, float]:
        rows = con.execute("SELECT scorer || '/' || metric, value FROM scores WHERE clip = ? AND value IS NOT NULL",
                           [sha256]).fetchall()
        return dict(rows)
    return scores


def build_app(campaign: Campaign, task: AnnotationTask, show_scores: bool, sessions: Sessions,
              throttle: LoginThrottle) -> tuple[gr.Blocks, AnnotationService, APIRouter]:
    """The Gradio page, the service behind it, and the lean JSON API over the same service."""
    service = AnnotationService(campaign, task)
    media_url = media_url_for(campaign)
    scores = clip_scores(campaign) if show_scores else None
    with gr.Blocks(title="portrait-dpo annotation") as blocks:
        gr.Markdown(f"## portrait-dpo: {service.mode.question}")
        build_annotation(blocks, service, media_url, scores)
        build_admin(blocks, campaign, service)
    router = rest_api(campaign, service, sessions, throttle,
                      lambda name: item_payload(service, name, media_url, scores),
                      lambda *args: store_answers(service, *args))
    return blocks, service, router


@dataclass
class RunningServer:
    """A started server; `close` stops it and releases the campaign's journal."""

    url: str
    blocks: gr.Blocks
    service: AnnotationService
    server: uvicorn.Server
    thread: threading.Thread

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C stops it)."""
        try:
            while self.thread.is_alive():
                self.thread.join(0.5)
        except KeyboardInterrupt:
            pass

    def close(self) -> None:
        """Stop serving and release the journal."""
        self.server.should_exit = True
        self.thread.join(timeout=5)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout=5)
        self.service.close()


def launch(campaign: Campaign, task: AnnotationTask, settings: ServerSettings) -> RunningServer:
    """Start the page and the API (login against the campaign's enabled users) in a background thread."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    sessions, throttle = Sessions(Accounts(campaign), settings.session_hours * 3600), LoginThrottle()
    blocks, service, router = build_app(campaign, task, settings.show_scores, sessions, throttle)
    blocks.queue(default_concurrency_limit=None)
    app = FastAPI(title="portrait-dpo annotation API")
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, malformed_body)
    app = gr.mount_gradio_app(
        app, blocks, path="", auth=lambda user, password: authenticate(campaign, user, password) is not None,
        auth_message="Log in with the account your campaign admin gave you.",
        allowed_paths=[str((campaign.root / "media").resolve())], head=f"<script>{_PLAYER_JS}</script>", css=CSS,
        footer_links=["api"], ssr_mode=False, show_error=False,
    )
    # Gradio keeps its page logins in its own app's token table; sweeping that table ends revoked ones.
    sessions.follow_gradio(next(route.app for route in app.routes if isinstance(route, Mount)).tokens)
    app.add_middleware(RequestGuard, sessions=sessions, throttle=throttle)
    # Browsers and Gradio clients hold event streams open; do not wait on them when stopping.
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                                           access_log=False, timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name="annotation-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            service.close()
            raise UserError(f"could not start the server on {settings.host}:{settings.port}; is the port in use? "
                            "pass --port")
        time.sleep(0.05)
    return RunningServer(f"http://{settings.host}:{settings.port}/", blocks, service, server, thread)
