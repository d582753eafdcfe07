"""The lean JSON API for scripted and bulk clients, beside the Gradio page (which has its own API).

    POST /api/login       {"username", "password"}          → {"token"}   (429 + Retry-After when throttled)
    POST /api/logout      Authorization: Bearer TOKEN       → {"logged_out": true}
    GET  /api/next_item   Authorization: Bearer TOKEN       → the item (as the page shows it); "practice": true
                            while a new annotator practises on gold items (their answers are not votes)
    POST /api/submit      {"showing_id", "request_id", "answers", "skip_reason", "marks"}
                          → the acknowledgement, with the next item under "next" (one round trip per vote;
                            null when it could not be given now: ask GET /api/next_item); "marks" (optional):
                          [{"clip": "left" | "right", "criterion", "start_s", "end_s"}], spans where a clip fails;
                            after a practice item (or a gold item, when the task gives gold feedback) the
                            acknowledgement carries "feedback": [{"criterion", "answer", "given", "correct",
                            "definition" when not correct}], answers as shown (left, right, tie, both_bad)
    GET  /api/admin/stats (admins)                          → the admin report (admin_app.SharedReport)
    GET  /admin/votes.parquet (admins; the page's login too) → the votes with a `retracted` column
    GET  /media/…         Authorization: Bearer TOKEN       → a file of the open item (the item's URLs)

The password is checked once, at login; the token (random, held in memory) names the annotator until
it expires, is logged out, or its account is disabled or gets a new password. Every route calls the
same service functions as the page, so both store the same records.
"""

from __future__ import annotations

from typing import Any, Callable

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import BaseModel

from annotate.admin_app import is_admin
from annotate.form import ack_payload
from annotate.http_guards import client_address, retry_after
from annotate.login_throttle import LoginThrottle
from annotate.sessions import Sessions
from annotate.showing import Refused
from annotate.users import authenticate
from campaign.store import Campaign


class Login(BaseModel):
    username: str
    password: str


class Submission(BaseModel):
    showing_id: str
    request_id: str
    answers: dict[str, Any] | None = None
    skip_reason: str | None = None
    marks: list[Any] | None = None


def _token(authorization: str | None = Header(default=None)) -> str:
    return (authorization or "").removeprefix("Bearer ").strip()


def rest_api(campaign: Campaign, sessions: Sessions, throttle: LoginThrottle, item: Callable[[str], dict],
             store: Callable[..., Any], report: Callable[[], dict]) -> APIRouter:
    """Routes under /api; `item(annotator)`, `store(annotator, showing_id, request_id, answers, reason, marks)` and
    `report()` (the admin report)."""
    router = APIRouter(prefix="/api")

    def annotator(token: str = Depends(_token)) -> str:
        name = sessions.user(token)
        if not name:
            raise HTTPException(401, "log in first: POST /api/login, then send Authorization: Bearer TOKEN")
        return name

    @router.post("/login")
    def login(body: Login, request: Request) -> dict[str, str]:
        address = client_address(request.scope)
        wait = throttle.wait(body.username, address)
        if wait > 0:
            raise HTTPException(429, "too many failed logins; try again later", headers=retry_after(wait))
        account = authenticate(campaign, body.username, body.password)
        if account is None:
            throttle.failed(body.username, address)
            raise HTTPException(401, "wrong user name or password")
        throttle.succeeded(body.username)
        return {"token": sessions.issue(account)}

    @router.post("/logout")
    def logout(token: str = Depends(_token)) -> dict[str, bool]:
        if not sessions.end(token):
            raise HTTPException(401, "not logged in")
        return {"logged_out": True}

    @router.get("/next_item")
    def next_item(name: str = Depends(annotator)) -> dict:
        try:
            return item(name)
        except Refused as exc:  # 503: the showing could not be recorded
            raise HTTPException(exc.status, str(exc)) from None

    @router.post("/submit")
    def submit(body: Submission, name: str = Depends(annotator)) -> dict:
        try:
            ack = ack_payload(store(name, body.showing_id, body.request_id, body.answers, body.skip_reason,
                                     body.marks))
        except Refused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        try:
            following = item(name)
        except Refused:  # the answer is stored: acknowledge it all the same; the client asks for the item later
            following = None
        return {**ack, "next": following}

    @router.get("/admin/stats")
    def admin_stats(name: str = Depends(annotator)) -> dict:
        if not is_admin(campaign, name):
            raise HTTPException(403, "admins only")
        return report()

    return router
