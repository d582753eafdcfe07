"""A/B mode: two candidates of one condition side by side, one answer per criterion.

The UI shows the clips as A (left) and B (right); answers travel as left / right / tie / both_bad and
the service's showing says which stored clip was on the left, so the browser never decides what is
stored. The same two functions serve the page and the HTTP API (`/next_item`, `/submit_vote`).
"""

from __future__ import annotations

import html
import json
from typing import Any, Callable

import gradio as gr

from annotate.service import AnnotationService, Refused, Showing

UI_CHOICES = [("A better", "left"), ("B better", "right"), ("Tie", "tie"), ("Both bad", "both_bad")]
SHORTCUTS = ("Shortcuts: <b>A</b> / <b>B</b> A or B better · <b>T</b> tie · <b>X</b> both bad (for the highlighted "
             "criterion, then the next) · <b>↑ ↓</b> move · <b>Enter</b> submit · <b>S</b> skip · <b>R</b> replay · "
             "<b>Space</b> play/pause")


def user_of(request: gr.Request | None) -> str:
    """The authenticated annotator; anything the browser sends about identity is ignored."""
    name = getattr(request, "username", None)
    if not name:
        raise gr.Error("401: log in first")
    return name


def refusal(exc: Refused) -> gr.Error:
    """A service refusal as the error the client sees (status first)."""
    return gr.Error(f"{exc.status}: {exc}")


def canonical(showing: Showing, answer: str) -> str:
    """left/right as shown → the stored clip a/b; tie and both_bad unchanged."""
    other = "b" if showing.left == "a" else "a"
    return {"left": showing.left, "right": other}.get(answer, answer)


def item_payload(service: AnnotationService, showing: Showing | None, media_url: Callable[[str], str],
                 scores: Callable[[str], dict[str, float]] | None) -> dict[str, Any]:
    """What a client needs to show one item (or that nothing is left)."""
    done, available = service.progress(showing.annotator) if showing else (0, 0)
    if showing is None:
        return {"done": True}
    item = showing.item
    left, right = (item.clip_a, item.clip_b) if showing.left == "a" else (item.clip_b, item.clip_a)
    condition = service.condition(item.condition_id)
    payload = {
        "done": False,
        "showing_id": showing.showing_id,
        "condition_id": item.condition_id,
        "left": {"clip": left, "url": media_url(service.clip_media(left))},
        "right": {"clip": right, "url": media_url(service.clip_media(right))},
        "reference_url": media_url(condition.reference_image),
        "audio_url": media_url(condition.audio),
        "criteria": list(service.criteria),
        "progress": {"annotator_done": done, "annotator_available": available},
    }
    if scores is not None:
        payload["left"]["scores"], payload["right"]["scores"] = scores(left), scores(right)
    return payload


def player_html(payload: dict[str, Any]) -> str:
    """The reference, the audio control and the two synced videos."""
    if payload.get("done"):
        return "<div data-showing='' class='pd-done'>All done for now: thank you! New items may come later.</div>"

    def clip(side: str, label: str) -> str:
        info = payload[side]
        table = ""
        if "scores" in info:
            table = "<table class='pd-scores'>" + "".join(
                f"<tr><td>{html.escape(k)}</td><td>{v:.3g}</td></tr>" for k, v in sorted(info["scores"].items())
            ) + "</table>"
        return (f"<figure><figcaption>{label}</figcaption><video class='pd-clip' data-side='{side}' "
                f"src='{html.escape(info['url'])}' muted playsinline preload='auto' controls></video>{table}</figure>")

    return (
        f"<div data-showing='{html.escape(payload['showing_id'])}' class='pd-item'>"
        f"<div class='pd-reference'><img src='{html.escape(payload['reference_url'])}' alt='reference'>"
        f"<audio controls src='{html.escape(payload['audio_url'])}'></audio>"
        f"<div>condition {html.escape(payload['condition_id'])}</div></div>"
        f"<div class='pd-pair'>{clip('left', 'A (left)')}{clip('right', 'B (right)')}</div></div>"
    )


def build_ab(blocks: gr.Blocks, service: AnnotationService, media_url: Callable[[str], str],
             scores: Callable[[str], dict[str, float]] | None) -> None:
    """The A/B tab and its API, inside the open `blocks`."""

    def next_item(request: gr.Request) -> dict[str, Any]:
        return item_payload(service, service.next_showing(user_of(request)), media_url, scores)

    def submit_vote(showing_id: str, request_id: str, answers: dict[str, str] | str | None, skip_reason: str | None,
                    request: gr.Request) -> dict[str, Any]:
        annotator = user_of(request)
        try:
            if isinstance(answers, str):
                answers = json.loads(answers) if answers.strip() else None
            if answers is not None and not isinstance(answers, dict):
                raise Refused(400, "answers must be an object {criterion: left|right|tie|both_bad}, or null to skip")
            try:
                showing = service.showing(annotator, str(showing_id))
                stored = None if answers is None else {c: canonical(showing, str(a)) for c, a in answers.items()}
            except Refused as exc:
                if exc.status != 404:
                    raise
                stored = None  # not open: a repeat is acknowledged, an unknown showing refused, by the service
            ack = service.submit(annotator, str(showing_id), str(request_id), stored, skip_reason or None)
        except Refused as exc:
            raise refusal(exc) from None
        except (ValueError, TypeError) as exc:
            raise gr.Error(f"400: malformed request ({exc})") from None
        return {"showing_id": ack.showing_id, "repeated": ack.repeated, "done": ack.done,
                "available": ack.available}

    gr.api(next_item, api_name="next_item", concurrency_limit=None)
    gr.api(submit_vote, api_name="submit_vote", concurrency_limit=None)

    with gr.Tab("Vote", id="vote"):
        gr.HTML(f"<div class='pd-shortcuts'>{SHORTCUTS}</div>")
        player = gr.HTML(elem_id="pd-player", js_on_load=None)
        radios = [gr.Radio(UI_CHOICES, label=c.replace("_", " "), elem_classes=["pd-criterion"])
                  for c in service.criteria]
        hint = gr.HTML("<div id='pd-hint'></div>")
        with gr.Row():
            submit = gr.Button("Submit (Enter)", variant="primary", elem_id="pd-submit")
            skip = gr.Button("Skip (S)", elem_id="pd-skip")
        skip_reason = gr.Textbox(label="Skip reason (optional)", max_lines=1)
        status = gr.Markdown()
        showing_box = gr.Textbox(visible=False)
        session_count = gr.State(0)

        def show(payload: dict[str, Any], session: int, message: str = "") -> tuple:
            progress = payload.get("progress", {})
            line = (f"{message} Done {progress.get('annotator_done', '–')} / "
                    f"{progress.get('annotator_available', '–')} · this session {session}").strip()
            return (player_html(payload), payload.get("showing_id", ""), *([None] * len(radios)), "", line, session)

        outputs = [player, showing_box, *radios, skip_reason, status, session_count]

        def load(session: int, request: gr.Request) -> tuple:
            return show(next_item(request), session)

        def answer(showing_id: str, session: int, reason: str, skipping: bool, values: list, request: gr.Request):
            if not showing_id:
                return show(next_item(request), session)
            answers = None if skipping else dict(zip(service.criteria, values))
            if answers is not None and None in answers.values():
                raise gr.Error("400: answer every criterion (or skip)")
            ack = submit_vote(showing_id, f"ui-{showing_id}", answers, reason, request)
            session += 0 if ack["repeated"] else 1
            return show(next_item(request), session, "Skipped." if skipping else "Saved.")

        def on_submit(showing_id, session, reason, *values, request: gr.Request):
            return answer(showing_id, session, reason, False, list(values), request)

        def on_skip(showing_id, session, reason, *values, request: gr.Request):
            return answer(showing_id, session, reason, True, list(values), request)

        inputs = [showing_box, session_count, skip_reason, *radios]
        submit.click(on_submit, inputs, outputs, api_visibility="private", concurrency_limit=None)
        skip.click(on_skip, inputs, outputs, api_visibility="private", concurrency_limit=None)
        blocks.load(load, [session_count], outputs, api_visibility="private")
