"""Rating mode (Hallo4's protocol): one clip at a time, a 1–5 score per criterion.

Same logins, durability, assignment and shortcuts as A/B mode; HTTP API `/next_item`, `/submit_rating`.
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr

from annotate.form import Payload, api_call, base_payload, build_form, clip_payload, media_html, parse_answers, user_of
from annotate.service import Ack, AnnotationService

SCORES = [("1 worst", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5 best", "5")]
SHORTCUTS = ("Shortcuts: <b>1</b>–<b>5</b> score the highlighted criterion, then the next · <b>↑ ↓</b> move · "
             "<b>Enter</b> submit · <b>S</b> skip · <b>R</b> replay · <b>Space</b> play/pause")


def rating_item(service: AnnotationService, annotator: str, media_url: Callable[[str], str],
                scores: Callable[[str], dict[str, float]] | None) -> Payload:
    """The annotator's next (or open) clip to rate."""
    showing = service.next_showing(annotator)
    if showing is None:
        return {"done": True}
    return {**base_payload(service, showing, media_url),
            "clip": clip_payload(service, showing.item.clip_a, media_url, scores)}


def rating_store(service: AnnotationService, annotator: str, showing_id: str, request_id: str, ratings: Any,
                 skip_reason: str | None) -> Ack:
    """Store 1–5 scores per criterion (or None: a skip) for a showing."""
    return service.submit(annotator, showing_id, request_id, parse_answers(ratings), skip_reason or None)


def build_rating(blocks: gr.Blocks, service: AnnotationService, media_url: Callable[[str], str],
                 scores: Callable[[str], dict[str, float]] | None) -> None:
    """The rating tab and its Gradio API, inside the open `blocks`."""

    def next_item(request: gr.Request) -> Payload:
        return rating_item(service, user_of(request), media_url, scores)

    def submit_rating(showing_id: str, request_id: str, ratings: dict[str, int] | str | None,
                      skip_reason: str | None, request: gr.Request) -> Payload:
        return api_call(rating_store, service, user_of(request), str(showing_id), str(request_id), ratings,
                        skip_reason)

    gr.api(next_item, api_name="next_item", concurrency_limit=None)
    gr.api(submit_rating, api_name="submit_rating", concurrency_limit=None)
    build_form(blocks, "Rate", service.criteria, SCORES, SHORTCUTS, next_item, submit_rating,
               lambda payload: media_html(payload, [("clip", "clip")]))
