"""The lean JSON API for scripted and bulk clients, beside the Gradio page (which has its own API).

    POST /api/login       {"username", "password"}          → {"token"}
    GET  /api/next_item   Authorization: Bearer TOKEN       → the item (as the page shows it)
    POST /api/submit      {"showing_id", "request_id", "answers", "skip_reason"}
                          → the acknowledgement, with the next item under "next" (one round trip per vote)
    GET  /api/admin/stats (admins)                          → the admin report

The password is checked once, at login; the token (random, held in memory) names the annotator from
then on. Every route calls the same service functions as the page, so both store the same records.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any, Callable

from fastapi import APIRouter, Depends, Header, HTTPException
from pydantic import BaseModel

from annotate.admin_app import admin_report, is_admin
from annotate.form import ack_payload
from annotate.service import AnnotationService, Refused
from annotate.store import Campaign
from annotate.users import authenticate


class Login(BaseModel):
    username: str
    password: str


class Submission(BaseModel):
    showing_id: str
    request_id: str
    answers: dict[str, Any] | None = None
    skip_reason: str | None = None


def rest_api(campaign: Campaign, service: AnnotationService, item: Callable[[str], dict],
             store: Callable[..., Any]) -> APIRouter:
    """Routes under /api; `item(annotator)` and `store(annotator, showing_id, request_id, answers, reason)`."""
    router = APIRouter(prefix="/api")
    tokens: dict[str, str] = {}
    lock = threading.Lock()

    def annotator(authorization: str | None = Header(default=None)) -> str:
        token = (authorization or "").removeprefix("Bearer ").strip()
        with lock:
            name = tokens.get(token)
        if not name:
            raise HTTPException(401, "log in first: POST /api/login, then send Authorization: Bearer TOKEN")
        return name

    @router.post("/login")
    def login(body: Login) -> dict[str, str]:
        if authenticate(campaign, body.username, body.password) is None:
            raise HTTPException(401, "wrong user name or password")
        token = secrets.token_urlsafe(32)
        with lock:
            tokens[token] = body.username
        return {"token": token}

    @router.get("/next_item")
    def next_item(name: str = Depends(annotator)) -> dict:
        return item(name)

    @router.post("/submit")
    def submit(body: Submission, name: str = Depends(annotator)) -> dict:
        try:
            ack = ack_payload(store(name, body.showing_id, body.request_id, body.answers, body.skip_reason))
        except Refused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return {**ack, "next": item(name)}

    @router.get("/admin/stats")
    def admin_stats(name: str = Depends(annotator)) -> dict:
        if not is_admin(campaign, name):
            raise HTTPException(403, "admins only")
        return admin_report(campaign, service)

    return router
