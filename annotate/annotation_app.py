"""The annotation tab and its Gradio API, for whichever mode the campaign's task asks.

The mode object says which clips an item shows and which answers it offers; the same item and store
functions serve the page, the Gradio API (`/next_item`, `/submit_vote` or `/submit_rating`) and the JSON
API, so all three store the same records.
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr

from annotate.form import Payload, api_call, base_payload, build_form, clip_payload, parse_answers, user_of
from annotate.service import Ack, AnnotationService


def item_payload(service: AnnotationService, annotator: str, media_url: Callable[[str], str],
                 scores: Callable[[str], dict[str, float]] | None) -> Payload:
    """The annotator's next (or open) item, its clips under the mode's keys (left/right, or clip)."""
    showing = service.next_showing(annotator)
    if showing is None:
        return {"done": True}
    clips = zip((key for key, _ in service.mode.captions), service.mode.clips(showing))
    return {**base_payload(service, showing, media_url),
            **{key: clip_payload(service, clip, media_url, scores) for key, clip in clips}}


def store_answers(service: AnnotationService, annotator: str, showing_id: str, request_id: str, answers: Any,
                  skip_reason: str | None) -> Ack:
    """Store the answers of a showing as the annotator gave them (None: a skip)."""
    return service.submit(annotator, showing_id, request_id, parse_answers(answers), skip_reason or None)


def build_annotation(blocks: gr.Blocks, service: AnnotationService, media_url: Callable[[str], str],
                     scores: Callable[[str], dict[str, float]] | None) -> None:
    """The mode's tab and its Gradio API, inside the open `blocks`."""

    def next_item(request: gr.Request) -> Payload:
        return item_payload(service, user_of(request), media_url, scores)

    def submit(showing_id: str, request_id: str, answers: dict[str, Any] | str | None, skip_reason: str | None,
               request: gr.Request) -> Payload:
        return api_call(store_answers, service, user_of(request), str(showing_id), str(request_id), answers,
                        skip_reason)

    gr.api(next_item, api_name="next_item", concurrency_limit=None)
    gr.api(submit, api_name=service.mode.submit_api, concurrency_limit=None)
    build_form(blocks, service.task, service.mode, next_item, submit)
