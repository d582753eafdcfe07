"""The annotation form every mode shares: player, instructions, one choice per criterion, submit and skip,
progress. The mode object says what is offered; `next_item(request) -> payload` and `submit(showing_id,
request_id, answers | None, skip_reason, request) -> ack` are the calls behind it.
"""

from __future__ import annotations

import html
import json
from typing import Any, Callable

import gradio as gr

from annotate.modes import AnnotationMode
from annotate.service import Ack, AnnotationService
from annotate.showing import Refused, Showing, quoted
from data_schemas import AnnotationTask

Payload = dict[str, Any]


def user_of(request: gr.Request | None) -> str:
    """The authenticated annotator; anything the browser sends about identity is ignored."""
    name = getattr(request, "username", None)
    if not name:
        raise gr.Error("401: log in first")
    return name


def refusal(exc: Refused) -> gr.Error:
    """A service refusal as the error the client sees (status first)."""
    return gr.Error(f"{exc.status}: {exc}")


def instructions_markdown(task: AnnotationTask, mode: AnnotationMode) -> str:
    """The task's instructions, then each criterion's definition and examples, then the verdicts'."""
    parts = [task.instructions]
    for criterion in task.criteria:
        example = task.examples.get(criterion)
        parts.append(f"**{criterion.replace('_', ' ')}**: {task.definitions[criterion]}"
                     + (f"  \n*{example}*" if example else ""))
    parts += [f"**{verdict.replace('_', ' ')}**: {task.definitions[verdict]}" for verdict in mode.verdicts
              if verdict in task.definitions]
    return "\n\n".join(parts)


def build_form(
    blocks: gr.Blocks,
    task: AnnotationTask,
    mode: AnnotationMode,
    next_item: Callable[[gr.Request], Payload],
    submit: Callable[..., Payload],
) -> None:
    """The mode's tab of the shared form inside the open `blocks`, loading the first item on page load."""
    criteria, choices = tuple(task.criteria), [tuple(choice) for choice in mode.choices]
    with gr.Tab(mode.tab):
        with gr.Accordion("Instructions", open=False):
            gr.Markdown(instructions_markdown(task, mode))
        gr.HTML(f"<div class='pd-shortcuts'>{mode.shortcuts}</div>")
        player = gr.HTML(elem_id="pd-player")
        radios = [gr.Radio(choices, label=c.replace("_", " "), elem_classes=["pd-criterion"]) for c in criteria]
        gr.HTML("<div id='pd-hint'></div>")
        with gr.Row():
            submit_button = gr.Button("Submit (Enter)", variant="primary", elem_id="pd-submit")
            skip_button = gr.Button("Skip (S)", elem_id="pd-skip")
        skip_reason = gr.Textbox(label="Skip reason (optional)", max_lines=1)
        status = gr.Markdown()
        showing_box = gr.Textbox(visible=False)
        session_count = gr.State(0)
    outputs = [player, showing_box, *radios, skip_reason, status, session_count]

    def show(payload: Payload, session: int, message: str = "") -> tuple:
        progress = payload.get("progress", {})
        line = (f"{message} Done {progress.get('annotator_done', '–')} / "
                f"{progress.get('annotator_available', '–')} · this session {session} · campaign "
                f"{progress.get('campaign_collected', '–')} / {progress.get('campaign_needed', '–')} answers").strip()
        return (media_html(payload, mode.captions), payload.get("showing_id", ""), *([None] * len(radios)), "", line,
                session)

    def answer(showing_id: str, session: int, reason: str, skipping: bool, values: list, request: gr.Request):
        if showing_id:
            answers = None if skipping else dict(zip(criteria, values))
            if answers is not None and None in answers.values():
                raise gr.Error("400: answer every criterion (or skip)")
            # One request id per showing: a double click or a retry is the same submission.
            ack = submit(showing_id, f"ui-{showing_id}", answers, reason, request)
            session += 0 if ack["repeated"] else 1
        return show(next_item(request), session, ("Skipped." if skipping else "Saved.") if showing_id else "")

    # Gradio injects the request by its annotation; it must come before the *values of the criteria.
    def on_submit(request: gr.Request, showing_id, session, reason, *values):
        return answer(showing_id, session, reason, False, list(values), request)

    def on_skip(request: gr.Request, showing_id, session, reason, *values):
        return answer(showing_id, session, reason, True, list(values), request)

    def on_load(session, request: gr.Request):
        return show(next_item(request), session)

    inputs = [showing_box, session_count, skip_reason, *radios]
    submit_button.click(on_submit, inputs, outputs, api_visibility="private", concurrency_limit=None)
    skip_button.click(on_skip, inputs, outputs, api_visibility="private", concurrency_limit=None)
    blocks.load(on_load, [session_count], outputs, api_visibility="private")


def base_payload(service: AnnotationService, showing: Showing, media_url: Callable[[str], str]) -> Payload:
    """The fields every mode's item has: ids, reference, audio, criteria, progress."""
    done, available = service.progress(showing.annotator)
    collected, needed = service.campaign_progress()
    condition = service.condition(showing.item.condition_id)
    return {
        "done": False,
        "showing_id": showing.showing_id,
        "condition_id": showing.item.condition_id,
        "reference_url": media_url(condition.reference_image),
        "audio_url": media_url(condition.audio),
        "criteria": list(service.criteria),
        "progress": {"annotator_done": done, "annotator_available": available, "campaign_collected": collected,
                     "campaign_needed": needed},
    }


def clip_payload(service: AnnotationService, clip: str, media_url: Callable[[str], str],
                 scores: Callable[[str], dict[str, float]] | None) -> Payload:
    """One clip of an item: its sha256, URL, and auto-scores when shown."""
    info: Payload = {"clip": clip, "url": media_url(service.clip_media(clip))}
    if scores is not None:
        info["scores"] = scores(clip)
    return info


def api_call(submit: Callable[..., Any], *args: Any) -> Payload:
    """Run a submission, turning refusals and malformed input into 4xx errors for the client."""
    try:
        return ack_payload(submit(*args))
    except Refused as exc:
        raise refusal(exc) from None
    except (ValueError, TypeError) as exc:
        raise gr.Error(f"400: malformed request ({quoted(str(exc))})") from None


def ack_payload(ack: Ack) -> Payload:
    """A service acknowledgement as the API returns it."""
    return {"showing_id": ack.showing_id, "repeated": ack.repeated, "done": ack.done, "available": ack.available}


def media_html(payload: Payload, clips: tuple[tuple[str, str], ...]) -> str:
    """Reference image, audio control and one synced video per (payload key, caption)."""
    if payload.get("done"):
        return "<div data-showing='' class='pd-done'>All done for now: thank you! New items may come later.</div>"
    figures = []
    for position, (key, caption) in enumerate(clips):
        info = payload[key]
        table = ""
        if "scores" in info:
            table = "<table class='pd-scores'>" + "".join(
                f"<tr><td>{html.escape(k)}</td><td>{v:.3g}</td></tr>" for k, v in sorted(info["scores"].items())
            ) + "</table>"
        # The first clip carries the controls; the player script makes the others follow it.
        controls = " controls" if position == 0 else ""
        figures.append(f"<figure><figcaption>{html.escape(caption)}</figcaption><video class='pd-clip' "
                       f"data-side='{key}' src='{html.escape(info['url'])}' muted playsinline preload='auto'"
                       f"{controls}></video>{table}</figure>")
    return (
        f"<div data-showing='{html.escape(payload['showing_id'])}' class='pd-item'>"
        f"<div class='pd-reference'><img src='{html.escape(payload['reference_url'])}' alt='reference'>"
        f"<audio controls src='{html.escape(payload['audio_url'])}'></audio>"
        f"<div>condition {html.escape(payload['condition_id'])}</div></div>"
        f"<div class='pd-pair'>{''.join(figures)}</div></div>"
    )


def parse_answers(answers: Any) -> Any:
    """Answers sent as JSON text decoded (empty text: null, a skip); anything else as it came, for the service
    to check."""
    if isinstance(answers, str):
        return json.loads(answers) if answers.strip() else None
    return answers
