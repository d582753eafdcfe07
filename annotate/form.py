"""The annotation form every mode shares: the clips under one set of controls, the guide, one choice per
criterion, submit, undo and skip, a progress bar, and the known answers after a practice (or gold) item, read on
the item just answered until the annotator presses Continue for the next one. The
mode object says what is offered; `next_item(request) -> payload`, `submit(showing_id, request_id,
answers | None, skip_reason, request, marks) -> ack` and `undo(showing_id, request) -> None` are the calls
behind it. The answers go with the segment marks the page keeps (player.js writes them, as JSON, into the
hidden #pd-marks box). Playback, the watch gate, the marks and the keyboard live in `player.js`; the page's look
in `page.css`.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any, Callable

import gradio as gr

from annotate.modes import AnnotationMode
from annotate.service import UNDO_SECONDS, Ack, AnnotationService
from annotate.showing import Refused, Showing, quoted
from data_schemas import AnnotationTask

Payload = dict[str, Any]

# Why an item is skipped, offered before the Skip button; "other" takes a few words of text.
SKIP_REASONS = ("did not load", "cannot judge", "inappropriate", "other")
SPEEDS = (0.25, 0.5, 1.0)  # the speed buttons and the [ ] keys step through these


def user_error(message: str) -> gr.Error:
    """An error the user made, shown to them; Gradio would also log a traceback of it on the server for each."""
    return gr.Error(message, print_exception=False)


def user_of(request: gr.Request | None) -> str:
    """The authenticated annotator; anything the browser sends about identity is ignored."""
    name = getattr(request, "username", None)
    if not name:
        raise user_error("401: log in first")
    return name


def refusal(exc: Refused) -> gr.Error:
    """A service refusal as the error the client sees (status first); only the server's own failures (5xx) are
    logged with their traceback."""
    return gr.Error(f"{exc.status}: {exc}", print_exception=exc.status >= 500)


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


def skip_reason_of(preset: str | None, other: str | None) -> str:
    """The stored skip reason of a preset (and the text given with "other"); a one-line error without one."""
    if preset not in SKIP_REASONS:
        raise user_error("Choose why you skip (did not load, cannot judge, inappropriate, other) before Skip.")
    text = (other or "").strip()
    if preset == "other":
        if not text:
            raise user_error("Skip because \"other\": say why in a few words, then Skip.")
        return f"other: {text}"
    return preset


def progress_html(progress: Payload, session: Payload, last_showing: str, message: str = "") -> str:
    """The progress bar: done / assigned, this session's pace and the time left at that pace."""
    done, available = progress.get("annotator_done", 0), progress.get("annotator_available", 0)
    share = done / available if available else 1.0
    parts = [f"<b>{html.escape(message)}</b>"] if message else []
    if progress.get("practice_total"):
        parts.append(f"<b>Practice {progress['practice_done'] + 1} of {progress['practice_total']}</b>: not counted; "
                     "after Submit you see the known answers")
    parts.append(f"<b>{done}</b> / {available} done")
    count, started = session.get("count", 0), session.get("started")
    if count and started:
        pace = (time.time() - started) / count
        parts.append(f"{pace:.0f} s per item")
        left = max(available - done, 0) * pace
        parts.append(f"about {left / 60:.0f} min left" if left >= 90 else f"about {left:.0f} s left")
    if "campaign_needed" in progress:  # not known while the known answers of the last item are read
        parts.append(f"campaign {progress.get('campaign_collected', 0)} / {progress['campaign_needed']} answers")
    return (f"<div class='pd-progress' data-last-showing='{html.escape(last_showing)}' "
            f"data-undo-seconds='{UNDO_SECONDS}' role='progressbar' aria-valuemin='0' aria-valuemax='{available}' "
            f"aria-valuenow='{done}'><div class='pd-bar'><div style='width:{share * 100:.1f}%'></div></div>"
            f"<div class='pd-progress-text'>{' · '.join(parts)}</div></div>")


def feedback_html(feedback: list[Payload] | None, labels: dict[str, str]) -> str:
    """The known answers of the gold item just answered beside the annotator's, one line per criterion, with the
    criterion's definition where they differ; `labels` names the answers as the buttons do. Empty without any."""
    if not feedback:
        return ""
    lines = []
    for entry in feedback:
        name, answer = html.escape(entry["criterion"].replace("_", " ")), html.escape(labels[entry["answer"]])
        if entry["correct"]:
            lines.append(f"<li class='pd-match'>✓ <b>{name}</b>: {answer}, as you answered.</li>")
            continue
        given = "you skipped it" if entry["given"] is None else f"you answered {html.escape(labels[entry['given']])}"
        lines.append(f"<li class='pd-miss'>✗ <b>{name}</b>: the answer is {answer}; {given}."
                     f"<div class='pd-definition'>{html.escape(entry.get('definition', ''))}</div></li>")
    return ("<div class='pd-feedback' role='status'><div class='pd-feedback-title'>The item you just answered has "
            f"known answers:</div><ul>{''.join(lines)}</ul></div>")


def build_form(
    blocks: gr.Blocks,
    task: AnnotationTask,
    mode: AnnotationMode,
    next_item: Callable[[gr.Request], Payload],
    submit: Callable[..., Payload],
    undo: Callable[[str, gr.Request], None],
) -> None:
    """The shared form inside the open tab of `blocks`, loading the first item on page load."""
    criteria, choices = tuple(task.criteria), [tuple(choice) for choice in mode.choices]
    labels = {value: label for label, value in mode.choices}
    with gr.Row(elem_id="pd-main", equal_height=False):
        with gr.Column(scale=3, min_width=300, elem_id="pd-media"):
            player = gr.HTML(elem_id="pd-player")
        with gr.Column(scale=2, min_width=300, elem_id="pd-side") as side:
            verdicts = " and ".join(v.replace("_", " ").capitalize() for v in mode.verdicts)
            with gr.Accordion("Guide: what each criterion means" + (f", {verdicts}" if verdicts else ""),
                              open=False, elem_id="pd-guide"):
                gr.Markdown(instructions_markdown(task, mode))
            radios = [gr.Radio(choices, label=c.replace("_", " "), elem_classes=["pd-criterion"])
                      for c in criteria]
            gr.HTML("<div id='pd-hint' aria-live='polite'></div>")
            with gr.Row(elem_id="pd-actions") as actions:
                submit_button = gr.Button("Submit (Enter)", variant="primary", elem_id="pd-submit", scale=3)
                undo_button = gr.Button("Undo last (U)", elem_id="pd-undo", scale=1, size="sm")
            progress = gr.HTML(elem_id="pd-progress")
            feedback_box = gr.HTML(elem_id="pd-feedback")
            continue_button = gr.Button("Continue (Enter)", variant="primary", elem_id="pd-continue", visible=False)
            with gr.Column(elem_id="pd-skip-group") as skipping:
                skip_preset = gr.Radio(list(SKIP_REASONS), label="Skip because", elem_id="pd-skip-preset")
                with gr.Row(elem_id="pd-skip-row"):
                    skip_other = gr.Textbox(placeholder="other: say why", show_label=False, max_lines=1,
                                            elem_id="pd-skip-other", scale=3, min_width=120)
                    skip_button = gr.Button("Skip (S)", elem_id="pd-skip", scale=1, min_width=80, size="sm")
            gr.HTML(f"<div class='pd-shortcuts'>{mode.shortcuts}</div>")
            # Rendered (Gradio sends only rendered boxes' values), never shown: player.js fills it.
            marks_box = gr.Textbox(show_label=False, container=False, elem_id="pd-marks")
    showing_box = gr.Textbox(visible=False)
    session = gr.State({})  # {"count": items this session, "started": epoch seconds of the page load}
    last_box = gr.Textbox(visible=False)  # the showing id of the last submission, for undo
    outputs = [player, showing_box, *radios, skip_preset, skip_other, progress, session, last_box, side, marks_box,
               feedback_box, actions, skipping, continue_button]

    def show(payload: Payload, state: Payload, last: str, message: str = "") -> tuple:
        done = bool(payload.get("done"))
        return (media_html(payload, mode.captions), payload.get("showing_id", ""),
                *(gr.Radio(value=None, interactive=True) for _ in radios), None, "",
                progress_html(payload.get("progress", {}), state, last, message), state, last,
                gr.Column(visible=not done), "", "", gr.Row(visible=True), gr.Column(visible=True),
                gr.Button(visible=False))

    def review(ack: Payload, state: Payload, last: str, message: str, feedback: str) -> tuple:
        """The answered item stays, its answers locked, with the known answers beside them and Continue in place
        of submit, undo and skip: the annotator reads the feedback on the clips it is about."""
        done = {"annotator_done": ack["done"], "annotator_available": ack["available"]}
        return (gr.skip(), "", *(gr.Radio(interactive=False) for _ in radios), gr.skip(), gr.skip(),
                progress_html(done, state, last, f"{message} Read the known answers, then Continue."), state, last,
                gr.skip(), gr.skip(), feedback, gr.Row(visible=False), gr.Column(visible=False),
                gr.Button(visible=True))

    def following(request: gr.Request, state: Payload, last: str, message: str) -> tuple:
        try:
            payload = next_item(request)
        except gr.Error as exc:  # the answer is stored; only the next item could not be given now
            raise gr.Error(f"{message} The next item could not be loaded ({exc.message}); reload the page.") from None
        return show(payload, state, last, message)

    def answer(showing_id: str, state: Payload, last: str, answers: dict | None, reason: str | None,
               request: gr.Request, marks: str | None = None) -> tuple:
        message = ""
        if showing_id:
            # One request id per showing: a double click or a retry is the same submission.
            ack = submit(showing_id, f"ui-{showing_id}", answers, reason, request, marks)
            practice = bool(ack.get("practice"))
            if not ack["repeated"]:
                state = {**state, "count": state.get("count", 0) + 1}
                # After the known answers were shown (practice, gold feedback) the service refuses an undo.
                last = "" if "feedback" in ack else showing_id
            message = "Skipped." if answers is None else "Saved."
            if practice:
                message = "Practice item " + message.lower()
            if ack.get("feedback"):
                return review(ack, state, last, message, feedback_html(ack["feedback"], labels))
            return following(request, state, last, message)
        return show(next_item(request), state, last, message)

    # Gradio injects the request by its annotation; it must come before the *values of the criteria.
    def on_submit(request: gr.Request, showing_id, state, last, marks, *values):
        answers = dict(zip(criteria, values))
        if None in answers.values():
            missing = ", ".join(c.replace("_", " ") for c, v in answers.items() if v is None)
            raise user_error(f"Answer every criterion first: {missing} (or skip).")
        return answer(showing_id, state, last, answers, None, request, marks)

    def on_skip(request: gr.Request, showing_id, state, last, preset, other):
        return answer(showing_id, state, last, None, skip_reason_of(preset, other), request)

    def on_undo(request: gr.Request, state, last):
        if not last:
            raise user_error("Nothing to undo: only your last submission, within "
                           f"{UNDO_SECONDS} s, can be undone.")
        undo(last, request)
        state = {**state, "count": max(state.get("count", 0) - 1, 0)}
        return show(next_item(request), state, "", "Undone: that item is back; answer it again.")

    def on_continue(request: gr.Request, state, last):
        return following(request, state, last, "")

    def on_load(state, request: gr.Request):
        return show(next_item(request), state or {"count": 0, "started": time.time()}, "")

    submit_button.click(on_submit, [showing_box, session, last_box, marks_box, *radios], outputs,
                        api_visibility="private", concurrency_limit=None)
    skip_button.click(on_skip, [showing_box, session, last_box, skip_preset, skip_other], outputs,
                      api_visibility="private", concurrency_limit=None)
    undo_button.click(on_undo, [session, last_box], outputs, api_visibility="private", concurrency_limit=None)
    continue_button.click(on_continue, [session, last_box], outputs, api_visibility="private",
                          concurrency_limit=None)
    blocks.load(on_load, [session], outputs, api_visibility="private")


def base_payload(service: AnnotationService, showing: Showing, media_url: Callable[[str], str]) -> Payload:
    """The fields every mode's item has: ids, whether it is practice, reference, audio, criteria, progress (with
    the practice round's during practice)."""
    done, available = service.progress(showing.annotator)
    collected, needed = service.campaign_progress()
    condition = service.condition(showing.item.condition_id)
    progress = {"annotator_done": done, "annotator_available": available, "campaign_collected": collected,
                "campaign_needed": needed}
    if showing.practice:
        progress["practice_done"], progress["practice_total"] = service.practice_progress(showing.annotator)
    return {
        "done": False,
        "practice": showing.practice,
        "showing_id": showing.showing_id,
        "condition_id": showing.item.condition_id,
        "reference_url": media_url(condition.reference_image),
        "audio_url": media_url(condition.audio),
        "criteria": list(service.criteria),
        "progress": progress,
    }


def api_call(submit: Callable[..., Any], *args: Any) -> Payload:
    """Run a submission, turning refusals and malformed input into 4xx errors for the client."""
    try:
        return ack_payload(submit(*args))
    except Refused as exc:
        raise refusal(exc) from None
    except (ValueError, TypeError) as exc:
        raise user_error(f"400: malformed request ({quoted(str(exc))})") from None


def ack_payload(ack: Ack) -> Payload:
    """A service acknowledgement as the API returns it, with `practice: true` after a practice item and the known
    answers under `feedback` when there are any to tell."""
    payload = {"showing_id": ack.showing_id, "repeated": ack.repeated, "done": ack.done, "available": ack.available}
    if ack.practice:
        payload["practice"] = True
    if ack.feedback:
        payload["feedback"] = list(ack.feedback)
    return payload


# Every clip gets the same element and no native controls: no download, no picture-in-picture, no remote
# playback, nothing shown over one side only. The shared bar under them drives both.
_VIDEO_ATTRS = ("muted playsinline preload='auto' disablepictureinpicture disableremoteplayback "
                "controlslist='nodownload nofullscreen noremoteplayback noplaybackrate'")

FINISHED_HTML = ("<div data-showing='' class='pd-done' role='status'><div class='pd-done-title'>All done: thank you!</div>"
                 "<p>You have answered every item available to you. New items may come later: reload this page "
                 "to check. You can close the tab now.</p></div>")


def media_html(payload: Payload, clips: tuple[tuple[str, str], ...]) -> str:
    """The clips side by side under one control bar (play, frame steps, speed, timeline with a loop span,
    mouth zoom, which sound), the reference image, and the driving audio locked to the first clip."""
    if payload.get("done"):
        return FINISHED_HTML
    figures = []
    fps = float(payload[clips[0][0]].get("fps") or 25.0)
    # The clips play together for as long as the shortest one.
    duration = min((payload[key].get("duration") or 0.0 for key, _ in clips), default=0.0)
    for key, caption in clips:
        info = payload[key]
        ratio = (info.get("width") or 1) / (info.get("height") or 1)
        mouth = ",".join(f"{v:.4f}" for v in info.get("mouth") or ())
        table = ""
        if "scores" in info:
            table = "<table class='pd-scores'>" + "".join(
                f"<tr><td>{html.escape(k)}</td><td>{v:.3g}</td></tr>" for k, v in sorted(info["scores"].items())
            ) + "</table>"
        figures.append(
            f"<figure class='pd-figure'><figcaption>{html.escape(caption)}</figcaption>"
            f"<div class='pd-frame' style='--pd-ratio:{ratio:.4f}'><video class='pd-clip' "
            f"data-side='{html.escape(key)}' data-mouth='{mouth}' src='{html.escape(info['url'])}' {_VIDEO_ATTRS}>"
            f"</video></div>{table}</figure>")
    sounds = [("audio", "driving audio"), *((key, f"{caption.split(' ')[0]}'s own track") for key, caption in clips),
              ("off", "off")]
    options = "".join(f"<option value='{k}'>{html.escape(label)}</option>" for k, label in sounds)
    # One mark button per clip: M marks the first, Shift+M the second (player.js).
    marks = "".join(_mark_button(key, caption.split(" ")[0], shortcut)
                    for (key, caption), shortcut in zip(clips, ("M", "Shift+M")))
    speeds = "".join(f"<button type='button' class='pd-rate' data-rate='{s:g}' aria-pressed='{str(s == 1).lower()}'"
                     f">{s:g}×</button>" for s in SPEEDS)
    controls = (
        "<div class='pd-controls' role='group' aria-label='playback of all clips together'>"
        f"<img class='pd-reference' src='{html.escape(payload['reference_url'])}' alt='reference' "
        "title='the reference image'>"
        "<button type='button' data-act='play' title='play / pause all (Space)'>▶ ❚❚</button>"
        "<button type='button' data-act='back' title='pause, one frame back (,)'>◀ 1 frame</button>"
        "<button type='button' data-act='forward' title='pause, one frame forward (.)'>1 frame ▶</button>"
        f"<span class='pd-rates' title='speed of the clips and the sound ([ ])'>{speeds}</span>"
        "<label class='pd-sound-label'>Sound <select class='pd-sound' title='what you hear'>"
        f"{options}</select></label>"
        "<button type='button' data-act='zoom' aria-pressed='false' title='mouth zoom (Z)'>Mouth zoom</button>"
        "<div class='pd-timeline'><input type='range' class='pd-seek' aria-label='time' min='0' "
        f"max='{duration:.3f}' step='0.001' value='0'><div class='pd-loop-span' hidden></div>"
        "<div class='pd-mark-lane' title='drag here to set a span; then Mark'></div></div>"
        "<span class='pd-time'>0.00 s</span>"
        "<button type='button' data-act='loop-in' title='loop from here (I)'>Loop from</button>"
        "<button type='button' data-act='loop-out' title='loop to here (O)'>to</button>"
        "<button type='button' data-act='loop-clear' title='play the whole clip again (L)'>whole</button>"
        f"{marks}<div class='pd-mark-list' aria-live='polite'></div>"
        "<div class='pd-sound-note' hidden>Sound is off: the browser holds the sound back until you click: click anywhere "
        "or press a key to hear it.</div>"
        "</div>")
    return (
        f"<div data-showing='{html.escape(payload['showing_id'])}' class='pd-item' data-fps='{fps:g}' "
        f"data-duration='{duration:.3f}' data-condition='{html.escape(payload['condition_id'])}' "
        f"data-criteria='{html.escape(','.join(payload['criteria']))}'>"
        f"<div class='pd-pair'>{''.join(figures)}</div>{controls}"
        f"<audio class='pd-audio' src='{html.escape(payload['audio_url'])}' preload='auto'></audio></div>"
    )


def _mark_button(clip: str, name: str, shortcut: str) -> str:
    name = html.escape(name)
    return (f"<button type='button' data-act='mark' data-clip='{html.escape(clip)}' data-label='{name}' "
            f"title='mark where {name} fails the highlighted criterion: the loop span, else this second "
            f"({shortcut})'>Mark {name}</button>")


def parse_json_field(value: Any) -> Any:
    """Answers or marks sent as JSON text decoded (empty text: null; for answers, a skip); anything else as it
    came, for the service to check."""
    if isinstance(value, str):
        return json.loads(value) if value.strip() else None
    return value
