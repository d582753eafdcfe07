"""`annotate serve`: the Gradio app over one campaign and its task, behind the campaign's logins.

Media are served by `/media/<sha[:2]>/<file>` (the campaign path, never where the campaign lives on disk) to
the page's login (its cookie) and to JSON-API tokens (`Authorization: Bearer`) alike, and only the files of the
item the user has open: another annotator's item, anything outside `media/`, or a link out of it is a 403.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from starlette.routing import Mount

from annotate.admin_app import SharedReport, build_admin, votes_download
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
from data_schemas.records import MEDIA_PATTERN

_PLAYER_JS = (Path(__file__).parent / "player.js").read_text(encoding="utf-8")
CSS = (Path(__file__).parent / "page.css").read_text(encoding="utf-8")


def media_url_for(campaign: Campaign):
    """Campaign media path → its URL on this server (`/media/…`), which names no folder outside the campaign."""

    def url(relative: str) -> str:
        campaign.media_file(relative)  # refuses anything that is not media/<sha[:2]>/<file>
        return f"/{relative}"
    return url


def media_router(campaign: Campaign, service: AnnotationService, viewer) -> APIRouter:
    """`GET /media/{prefix}/{name}`: a file of the item the requesting user has open; `viewer(request)` names
    the user (None: not logged in)."""
    router = APIRouter()
    media_root = (campaign.root / "media").resolve()

    @router.get("/media/{prefix}/{name}")
    def media(prefix: str, name: str, request: Request) -> FileResponse:
        user = viewer(request)
        if user is None:
            raise HTTPException(401, "log in first (the page, or Authorization: Bearer TOKEN)")
        relative = f"media/{prefix}/{name}"
        if not re.fullmatch(MEDIA_PATTERN, relative):
            raise HTTPException(403, "not a campaign media file")
        if relative not in open_media(service, user):
            raise HTTPException(403, "this file is not part of the item you have open")
        path = campaign.media_file(relative).resolve()
        if not path.is_relative_to(media_root) or not path.is_file():  # a link out of media/, or nothing there
            raise HTTPException(403 if path.exists() else 404, "no such media file")
        return FileResponse(path)
    return router


def open_media(service: AnnotationService, annotator: str) -> set[str]:
    """The campaign media paths of the annotator's open item: its clips, the reference image and the audio."""
    showing = service.open_showing(annotator)
    if showing is None:
        return set()
    condition = service.condition(showing.item.condition_id)
    return {condition.reference_image, condition.audio, *map(service.clip_media, service.mode.clips(showing))}


def clip_scores(campaign: Campaign):
    """sha256 → {scorer/metric: value} from the campaign's current scores."""
    con = campaign.connect(journals=False)

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
    reports = SharedReport(campaign, service)
    with gr.Blocks(title="portrait-dpo annotation") as blocks:
        gr.Markdown(f"## portrait-dpo: {service.mode.question}")
        with gr.Tabs():  # one tab strip: the mode's tab, and Admin for admins
            build_annotation(blocks, service, media_url, scores)
            build_admin(blocks, campaign, reports)
    router = rest_api(campaign, sessions, throttle, lambda name: item_payload(service, name, media_url, scores),
                      lambda *args: store_answers(service, *args), reports.get)
    return blocks, service, router


def viewer(request: Request, sessions: Sessions, page) -> str | None:
    """Who sends a request: the user of its JSON-API token, else of its page login cookie; None if nobody."""
    authorization = request.headers.get("authorization", "")
    if authorization.startswith("Bearer "):
        return sessions.user(authorization.removeprefix("Bearer ").strip())
    cookie = (request.cookies.get(f"access-token-{page.cookie_id}")
              or request.cookies.get(f"access-token-unsecure-{page.cookie_id}"))
    return page.tokens.get(cookie) if cookie else None


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
    page: list = []  # the Gradio app, once mounted: its cookies name the page's logins
    app.include_router(media_router(campaign, service, lambda request: viewer(request, sessions, page[0])))
    app.include_router(votes_download(campaign, lambda request: viewer(request, sessions, page[0])))
    app.add_exception_handler(RequestValidationError, malformed_body)
    app = gr.mount_gradio_app(
        app, blocks, path="", auth=lambda user, password: authenticate(campaign, user, password) is not None,
        auth_message="Log in with the account your campaign admin gave you.",
        head=f"<script>{_PLAYER_JS}</script>", css=CSS, footer_links=["api"], ssr_mode=False, show_error=False,
    )
    page.append(next(route.app for route in app.routes if isinstance(route, Mount)))
    # Gradio keeps its page logins in its own app's token table; sweeping that table ends revoked ones.
    sessions.follow_gradio(page[0].tokens)
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
            raise UserError(f"could not start the server on {settings.host}:{settings.port}: the port is in use, "
                            "or the host is not an address of this machine; pass another --port or --host")
        time.sleep(0.05)
    return RunningServer(f"http://{settings.host}:{settings.port}/", blocks, service, server, thread)
