"""The annotation tab and its Gradio API, for whichever mode the campaign's task asks.

The mode object says which clips an item shows and which answers it offers; the same item and store
functions serve the page, the Gradio API (`/next_item`, `/submit_vote` or `/submit_rating`, `/undo_last`) and
the JSON API, so all of them store the same records.
"""

from __future__ import annotations

import json
import weakref
from typing import Any, Callable

import gradio as gr
import pyarrow as pa

from annotate.form import Payload, api_call, base_payload, build_form, parse_json_field, refusal, user_of
from annotate.service import Ack, AnnotationService
from annotate.showing import Refused


class ClipFacts:
    """What the page needs to know of each clip beyond its file: frame rate, duration, size, and the mouth's
    region from the face track stored when the clip was scored (none for clips not scored yet)."""

    def __init__(self, clips: pa.Table, scores: pa.Table) -> None:
        """`clips`: the clips table as the service read it (AnnotationService.clips); `scores`: the scores table."""
        columns = ["sha256", "fps", "duration", "width", "height"]
        self._clips = {row["sha256"]: row for row in clips.select(columns).to_pylist()}
        self._mouths: dict[str, list[float]] = {}
        for row in scores.select(["clip", "details"]).to_pylist():
            if row["clip"] not in self._mouths and row["details"] and "mouth_box" in row["details"]:
                box = json.loads(row["details"]).get("mouth_box")
                if isinstance(box, list) and len(box) == 4:
                    self._mouths[row["clip"]] = [float(v) for v in box]

    def of(self, sha256: str) -> Payload:
        """{fps, duration, width, height, mouth: [x0, y0, x1, y1] as fractions of the frame, or None}."""
        row = self._clips.get(sha256, {})
        return {"fps": row.get("fps"), "duration": row.get("duration"), "width": row.get("width"),
                "height": row.get("height"), "mouth": self._mouths.get(sha256)}


_FACTS: weakref.WeakKeyDictionary[AnnotationService, ClipFacts] = weakref.WeakKeyDictionary()


def clip_facts(service: AnnotationService) -> ClipFacts:
    """The clip facts of a service's campaign, read once per service (the JSON API asks for every item)."""
    if service not in _FACTS:
        _FACTS[service] = ClipFacts(service.clips, service.campaign.table("scores"))
    return _FACTS[service]


def clip_payload(service: AnnotationService, clip: str, media_url: Callable[[str], str], facts: ClipFacts,
                 scores: Callable[[str], dict[str, float]] | None) -> Payload:
    """One clip of an item: its sha256, URL, frame rate, duration, size, mouth region, and auto-scores when
    shown."""
    info: Payload = {"clip": clip, "url": media_url(service.clip_media(clip)), **facts.of(clip)}
    if scores is not None:
        info["scores"] = scores(clip)
    return info


def item_payload(service: AnnotationService, annotator: str, media_url: Callable[[str], str],
                 scores: Callable[[str], dict[str, float]] | None) -> Payload:
    """The annotator's next (or open) item, its clips under the mode's keys (left/right, or clip)."""
    showing = service.next_showing(annotator)
    if showing is None:
        return {"done": True}
    facts = clip_facts(service)
    clips = zip((key for key, _ in service.mode.captions), service.mode.clips(showing))
    return {**base_payload(service, showing, media_url),
            **{key: clip_payload(service, clip, media_url, facts, scores) for key, clip in clips}}


def store_answers(service: AnnotationService, annotator: str, showing_id: str, request_id: str, answers: Any,
                  skip_reason: str | None, marks: Any = None) -> Ack:
    """Store the answers of a showing as the annotator gave them (None: a skip), with their segment marks."""
    return service.submit(annotator, showing_id, request_id, parse_json_field(answers), skip_reason or None,
                          parse_json_field(marks))


def build_annotation(blocks: gr.Blocks, service: AnnotationService, media_url: Callable[[str], str],
                     scores: Callable[[str], dict[str, float]] | None) -> None:
    """The mode's tab and its Gradio API, inside the open `blocks`."""
    def next_item(request: gr.Request) -> Payload:
        try:
            return item_payload(service, user_of(request), media_url, scores)
        except Refused as exc:  # 503: the showing could not be journaled
            raise refusal(exc) from None

    def submit(showing_id: str, request_id: str, answers: dict[str, Any] | str | None, skip_reason: str | None,
               request: gr.Request, marks: list[dict[str, Any]] | str | None = None) -> Payload:
        return api_call(store_answers, service, user_of(request), str(showing_id), request_id, answers,
                        skip_reason, marks)

    def undo_last(showing_id: str, request: gr.Request) -> Payload:
        """Take back your last submission (within 60 s); its item comes back as your next item."""
        try:
            again = service.retract(user_of(request), str(showing_id))
        except Refused as exc:
            raise refusal(exc) from None
        return {"showing_id": again.showing_id}

    with gr.Tab(service.mode.tab, id="annotate"):
        gr.api(next_item, api_name="next_item", concurrency_limit=None)
        gr.api(submit, api_name=service.mode.submit_api, concurrency_limit=None)
        gr.api(undo_last, api_name="undo_last", concurrency_limit=None)
        build_form(blocks, service.task, service.mode, next_item, submit, undo_last)
