"""A/B mode: two candidates of one condition side by side, one answer per criterion.

The UI shows the clips as A (left) and B (right); answers travel as left / right / tie / both_bad and
the service's showing says which stored clip was on the left, so the browser never decides what is
stored. The same functions serve the page and the HTTP API (`/next_item`, `/submit_vote`).
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr

from annotate.form import Payload, api_call, base_payload, build_form, clip_payload, media_html, parse_answers, user_of
from annotate.service import Ack, AnnotationService, Refused, Showing

UI_CHOICES = [("A better", "left"), ("B better", "right"), ("Tie", "tie"), ("Both bad", "both_bad")]
SHORTCUTS = ("Shortcuts: <b>A</b> / <b>B</b> A or B better · <b>T</b> tie · <b>X</b> both bad (for the highlighted "
             "criterion, then the next) · <b>↑ ↓</b> move · <b>Enter</b> submit · <b>S</b> skip · <b>R</b> replay · "
             "<b>Space</b> play/pause")


def canonical(showing: Showing, answer: str) -> str:
    """left/right as shown → the stored clip a/b; tie and both_bad unchanged."""
    other = "b" if showing.left == "a" else "a"
    return {"left": showing.left, "right": other}.get(answer, answer)


def ab_item(service: AnnotationService, annotator: str, media_url: Callable[[str], str],
            scores: Callable[[str], dict[str, float]] | None) -> Payload:
    """The annotator's next (or open) pair, clips named left and right as shown."""
    showing = service.next_showing(annotator)
    if showing is None:
        return {"done": True}
    item = showing.item
    left, right = (item.clip_a, item.clip_b) if showing.left == "a" else (item.clip_b, item.clip_a)
    return {**base_payload(service, showing, media_url), "left": clip_payload(service, left, media_url, scores),
            "right": clip_payload(service, right, media_url, scores)}


def ab_store(service: AnnotationService, annotator: str, showing_id: str, request_id: str, answers: Any,
             skip_reason: str | None) -> Ack:
    """Store answers given as left/right/tie/both_bad (or None: a skip) for a showing."""
    answers = parse_answers(answers)
    try:
        showing = service.showing(annotator, showing_id)
        stored = None if answers is None else {c: canonical(showing, str(a)) for c, a in answers.items()}
    except Refused as exc:
        if exc.status != 404:
            raise
        stored = None  # not open: a repeat is acknowledged, an unknown showing refused, by the service
    return service.submit(annotator, showing_id, request_id, stored, skip_reason or None)


def build_ab(blocks: gr.Blocks, service: AnnotationService, media_url: Callable[[str], str],
             scores: Callable[[str], dict[str, float]] | None) -> None:
    """The A/B tab and its Gradio API, inside the open `blocks`."""

    def next_item(request: gr.Request) -> Payload:
        return ab_item(service, user_of(request), media_url, scores)

    def submit_vote(showing_id: str, request_id: str, answers: dict[str, str] | str | None, skip_reason: str | None,
                    request: gr.Request) -> Payload:
        return api_call(ab_store, service, user_of(request), str(showing_id), str(request_id), answers, skip_reason)

    gr.api(next_item, api_name="next_item", concurrency_limit=None)
    gr.api(submit_vote, api_name="submit_vote", concurrency_limit=None)
    build_form(blocks, "Vote", service.criteria, UI_CHOICES, SHORTCUTS, next_item, submit_vote,
               lambda payload: media_html(payload, [("left", "A (left)"), ("right", "B (right)")]))
