"""What stands in front of every route of the annotation server.

- A request body over MAX_BODY_BYTES is refused with 413 before anything parses it.
- The Gradio login (`POST /login`) is throttled like the JSON one: by account and by client address,
  429 with Retry-After while an account or address must wait.
- Sessions that ended (expired, account disabled, password changed) are swept before a request is served.
- A malformed JSON body is answered 422 naming the field, never echoing what was sent.
"""

from __future__ import annotations

import json
import math
from typing import Any, Awaitable, Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from annotate.login_throttle import LoginThrottle
from annotate.sessions import Sessions

MAX_BODY_BYTES = 64 * 1024  # an answer is a few hundred bytes; the largest is a skip reason of 500 characters
GRADIO_LOGIN_PATHS = ("/login", "/login/")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def client_address(scope: Scope) -> str:
    """The address a request came from, as the throttle counts it."""
    client = scope.get("client")
    return client[0] if client else "unknown"


def retry_after(wait_s: float) -> dict[str, str]:
    """The Retry-After header for a wait."""
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}


class RequestGuard:
    """ASGI middleware: body limit, Gradio login throttle, session sweep (see the module docstring)."""

    def __init__(self, app: Callable, sessions: Sessions, throttle: LoginThrottle,
                 limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.sessions, self.throttle, self.limit = app, sessions, throttle, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.sessions.sweep()
        body = await _read_body(scope, receive, self.limit)
        if body is None:
            await _reply(send, 413, f"request body over {self.limit // 1024} KiB; send less")
            return
        if scope["method"] == "POST" and scope["path"] in GRADIO_LOGIN_PATHS:
            await self._login(scope, body, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _login(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        form = await Request(scope, _replay(body, receive)).form()
        name, address = str(form.get("username") or "").strip(), client_address(scope)
        wait = self.throttle.wait(name, address)
        if wait > 0:
            await _reply(send, 429, f"too many failed logins; try again in {math.ceil(wait)} s", retry_after(wait))
            return
        status: list[int] = []

        async def watched(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, _replay(body, receive), watched)
        if status == [200]:
            self.throttle.succeeded(name)
        elif status and status[0] in (400, 401):
            self.throttle.failed(name, address)


async def malformed_body(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming the first bad field and what is wrong with it, without the input itself."""
    error = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part)[:40] for part in error.get("loc", ()))
    return JSONResponse({"detail": f"malformed request: {where}: {error.get('msg', 'invalid')}"}, status_code=422)


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is (or says it will be) over `limit` bytes."""
    headers = dict(scope.get("headers") or [])
    declared = headers.get(b"content-length", b"0")
    if not declared.isdigit() or int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away; the app will see that on its next receive
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the buffered body once, then passes on whatever comes next (a disconnect)."""
    given = False

    async def replayed() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replayed


async def _reply(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
