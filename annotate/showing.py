"""What the service, the annotation modes and the web layers share: a showing, a refusal, quoting user input."""

from __future__ import annotations

from dataclasses import dataclass

from campaign.items import Item

QUOTE_LIMIT = 40


class Refused(Exception):
    """A request the service will not carry out; `status` is the HTTP code (400, 403, 404, 409, 503)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Showing:
    """One item shown to one annotator."""

    showing_id: str
    annotator: str
    item: Item
    left: str  # "a" or "b": which clip is on the left (A/B mode)
    issued: float  # time.monotonic() when issued, for latency


def quoted(value: object) -> str:
    """User input as a message may show it: a short printable prefix, so an error never echoes a whole body."""
    text = value if isinstance(value, str) else repr(value)
    prefix = "".join(ch if ch.isprintable() else "?" for ch in text[:QUOTE_LIMIT])
    return repr(prefix + ("…" if len(text) > QUOTE_LIMIT else ""))
