"""Every record portrait-dpo stores or exchanges. No other package defines a column.

Bump a record's SCHEMA_VERSION when a field changes meaning or is removed; adding a nullable field
keeps the version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

from data_schemas.constants import CRITERIA
from data_schemas.record import spec

ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
SHA256_PATTERN = r"[0-9a-f]{64}"
MEDIA_PATTERN = r"media/[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{1,5}"

Choice = Literal["a", "b", "tie", "both_bad", "skip"]
Side = Literal["a", "b"]
Role = Literal["annotator", "admin"]
PairSource = Literal["human", "auto", "hybrid", "ranking"]
Split = Literal["train", "heldout"]
TaskMode = Literal["ab", "rating"]
AssignMode = Literal["round-robin", "active"]


# What annotators read: one paragraph per criterion and per A/B verdict that is not a win.
DEFINITIONS: dict[str, str] = {
    "lip_sync": (
        "Do the lips, jaw and teeth move with the speech? Listen with the sound on and watch only the mouth: it "
        "should open on vowels, close on b, p and m, and rest during pauses. Judge timing (the mouth early or "
        "late against the sound) and shape (too small, too wide, smeared). Ignore the eyes, the head's movement "
        "and image quality; they belong to other criteria."),
    "expression": (
        "Does the face look alive and fit what is said? Watch the eyes, brows, cheeks and blinks: a natural "
        "speaker blinks now and then, moves the brows with emphasis and shows feelings that suit the voice. A "
        "fixed stare, a frozen or constantly changing face, twitches, or a mood that contradicts the voice are "
        "worse. Ignore the mouth's timing (lip sync) and the head's movement (motion)."),
    "motion": (
        "Do the head and shoulders move like a real person talking? Small nods and turns that follow the rhythm "
        "of speech are natural. Judge jitter from frame to frame, sudden jumps, a head that swims against the "
        "background, warping of the neck or hair, and a head so still it looks pasted on. Ignore the mouth and "
        "the face's expression."),
    "overall": (
        "Which result would you rather publish as a real video of this person speaking? Weigh everything: lip "
        "sync, expression, motion, image quality (blur, flicker, artefacts, colour shifts) and whether the face "
        "still looks like the reference image. Answer from your overall impression, even where it disagrees "
        "with your answers on the other criteria."),
    "tie": (
        "Both clips are equally good on this criterion: you looked for a difference and found none that "
        "matters. Do not use tie to avoid a hard choice; when one clip is even slightly better, choose it."),
    "both_bad": (
        "Neither clip is acceptable on this criterion: both fail so clearly that a model should learn from "
        "neither. Choose it instead of picking the less bad clip, whose errors would otherwise be rewarded."),
}
EXAMPLES: dict[str, str] = {
    "lip_sync": ("Worse: the mouth opens a beat after the sound; the lips stay shut while the voice speaks; the "
                 "mouth keeps moving in a pause. Better: the lips close exactly on 'b', 'p' and 'm'."),
    "expression": ("Worse: no blink in four seconds; brows that never move; a smile over an angry voice. Better: "
                   "a blink and a raised brow on the stressed word."),
    "motion": ("Worse: the head shakes from frame to frame; it jumps between two positions; the neck stretches. "
               "Better: a slight nod with each phrase and smooth turns."),
    "overall": ("Worse: a good mouth on a flickering, blurred face; a face that drifts away from the reference. "
                "Better: slightly weaker lip sync on a sharp, stable, convincing person."),
}
INSTRUCTIONS = (
    "Play the clip(s) to the end at least once with the sound on; side by side clips play in step. Then judge "
    "each criterion on its own, by its definition: a clip can be good at lip sync and poor at motion. Skip "
    "only when you cannot judge (a clip does not load, no face is visible) and say why in a few words.")


def utc_now() -> datetime:
    """The current time, timezone-aware, as every record stores it."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Condition:
    """What a clip is generated from: a reference face, an audio track and an optional pose track."""

    SCHEMA_VERSION: ClassVar[int] = 1
    condition_id: str = spec("Stable id chosen by whoever made the condition", pattern=ID_PATTERN)
    reference_image: str = spec("Campaign media path of the reference image (PNG/JPEG)", pattern=MEDIA_PATTERN)
    audio: str = spec("Campaign media path of the driving audio", pattern=MEDIA_PATTERN)
    pose: str | None = spec(
        "Campaign media path of the head-pose track: .npy float32 [frames, 3] yaw/pitch/roll in radians",
        pattern=MEDIA_PATTERN, default=None,
    )
    text: str | None = spec("Optional transcript or prompt", default=None)
    created_at: datetime = spec("When the condition entered the campaign", factory=utc_now)


@dataclass(frozen=True)
class Clip:
    """One candidate video for a condition."""

    SCHEMA_VERSION: ClassVar[int] = 1
    sha256: str = spec("sha256 of the media file: the clip's identity everywhere", pattern=SHA256_PATTERN)
    condition_id: str = spec("Condition the clip was generated for", pattern=ID_PATTERN)
    media_path: str = spec("Campaign media path of the mp4", pattern=MEDIA_PATTERN)
    generator: str = spec("Name of the model or process that made the clip", pattern=ID_PATTERN)
    generator_version: str = spec("Version or checkpoint of the generator")
    fps: float = spec("Frames per second", minimum=1.0, maximum=240.0)
    frames: int = spec("Number of video frames", minimum=1)
    width: int = spec("Frame width in pixels", minimum=1)
    height: int = spec("Frame height in pixels", minimum=1)
    duration: float = spec("Duration in seconds", minimum=0.0)
    has_audio: bool = spec("Whether the file carries an audio track")
    seed: int | None = spec("Sampling seed, when the generator had one", default=None)
    params: dict[str, Any] = spec("Generation parameters (steps, guidance, degradation, …)", default={})
    created_at: datetime = spec("When the clip entered the campaign", factory=utc_now)


@dataclass(frozen=True)
class Score:
    """One automatic metric of one clip, or the reason it could not be computed."""

    SCHEMA_VERSION: ClassVar[int] = 1
    clip: str = spec("sha256 of the scored clip", pattern=SHA256_PATTERN)
    scorer: str = spec("Scorer name (sync, identity, …)", pattern=ID_PATTERN)
    scorer_version: str = spec("Scorer version, including which weights produced the value")
    metric: str = spec("Metric name within the scorer (lse_c, lse_d, …)", pattern=ID_PATTERN)
    value: float | None = spec("The metric, or null when the clip could not be scored", default=None)
    reason: str | None = spec("Why there is no value (no face found, no audio, …)", default=None)
    details: dict[str, Any] = spec("Extra per-clip detail (offsets, per-frame statistics, …); its `mark` says why "
                                   "a value is not to be trusted (`no sync peak`) and keeps it out of pairs",
                                   default={})
    created_at: datetime = spec("When the score was computed", factory=utc_now)


@dataclass(frozen=True)
class Annotator:
    """A person who may log in to the annotation app."""

    SCHEMA_VERSION: ClassVar[int] = 1
    name: str = spec("Login name", pattern=ID_PATTERN)
    role: Role = spec("annotator or admin")
    password_hash: str = spec("scrypt$n$r$p$salt_hex$hash_hex; never the password itself")
    disabled: bool = spec("A disabled annotator cannot log in; their votes stay", default=False)
    created_at: datetime = spec("When the account was created", factory=utc_now)


@dataclass(frozen=True)
class Vote:
    """One annotator's A/B judgement of one criterion for one showing of a clip pair."""

    SCHEMA_VERSION: ClassVar[int] = 1
    showing_id: str = spec("Server-issued id of this showing of the pair to this annotator", pattern=ID_PATTERN)
    request_id: str = spec("Client request id, so a retried submission is stored once", pattern=ID_PATTERN)
    annotator: str = spec("Login name, taken from the authenticated request", pattern=ID_PATTERN)
    condition_id: str = spec("Condition both clips belong to", pattern=ID_PATTERN)
    clip_a: str = spec("sha256 of clip A (the smaller sha256 of the pair)", pattern=SHA256_PATTERN)
    clip_b: str = spec("sha256 of clip B", pattern=SHA256_PATTERN)
    left: Side = spec("Which clip was shown on the left")
    criterion: str = spec("lip_sync, expression, motion, overall, …", pattern=ID_PATTERN)
    choice: Choice = spec("a / b better, tie, both_bad, or skip")
    skip_reason: str | None = spec("Optional reason given with a skip", default=None)
    is_gold: bool = spec("Whether the pair was a gold item with a known answer", default=False)
    latency_ms: int = spec("Milliseconds from showing to submission", minimum=0, default=0)
    created_at: datetime = spec("When the vote was stored", factory=utc_now)


@dataclass(frozen=True)
class Rating:
    """One annotator's 1–5 score of one criterion for one clip (Hallo4's protocol)."""

    SCHEMA_VERSION: ClassVar[int] = 1
    showing_id: str = spec("Server-issued id of this showing of the clip", pattern=ID_PATTERN)
    request_id: str = spec("Client request id, so a retried submission is stored once", pattern=ID_PATTERN)
    annotator: str = spec("Login name, taken from the authenticated request", pattern=ID_PATTERN)
    condition_id: str = spec("Condition of the clip", pattern=ID_PATTERN)
    clip: str = spec("sha256 of the rated clip", pattern=SHA256_PATTERN)
    criterion: str = spec("Criterion rated", pattern=ID_PATTERN)
    score: int | None = spec("1 (worst) … 5 (best); null when skipped", minimum=1, maximum=5, default=None)
    skip_reason: str | None = spec("Optional reason given with a skip", default=None)
    latency_ms: int = spec("Milliseconds from showing to submission", minimum=0, default=0)
    created_at: datetime = spec("When the rating was stored", factory=utc_now)


@dataclass(frozen=True)
class IssuedShowing:
    """An item shown to an annotator, journaled before they see it, so a restarted server shows it again."""

    SCHEMA_VERSION: ClassVar[int] = 1
    showing_id: str = spec("Server-issued id of the showing; a vote or rating names it", pattern=ID_PATTERN)
    annotator: str = spec("Login name it was shown to", pattern=ID_PATTERN)
    condition_id: str = spec("Condition of the item", pattern=ID_PATTERN)
    item_id: str = spec("The item shown (a clip pair, or one clip in rating mode)", pattern=ID_PATTERN)
    left: Side = spec("Which clip is on the left (A/B mode)")
    practice: bool | None = spec("Whether it is a practice item: a gold item whose answer is a PracticeAnswer, not a "
                                 "vote (null in showings journaled before practice existed: no)", default=False)
    created_at: datetime = spec("When it was shown", factory=utc_now)


@dataclass(frozen=True)
class PracticeAnswer:
    """One criterion of a new annotator's answer to a practice item (a gold item); kept apart from the votes, so
    nothing that counts votes sees it."""

    SCHEMA_VERSION: ClassVar[int] = 1
    showing_id: str = spec("Server-issued id of the practice showing", pattern=ID_PATTERN)
    request_id: str = spec("Client request id, so a retried submission is stored once", pattern=ID_PATTERN)
    annotator: str = spec("Login name, taken from the authenticated request", pattern=ID_PATTERN)
    condition_id: str = spec("Condition both clips belong to", pattern=ID_PATTERN)
    clip_a: str = spec("sha256 of clip A (the smaller sha256 of the pair)", pattern=SHA256_PATTERN)
    clip_b: str = spec("sha256 of clip B", pattern=SHA256_PATTERN)
    left: Side = spec("Which clip was shown on the left")
    criterion: str = spec("Criterion answered", pattern=ID_PATTERN)
    choice: Choice = spec("a / b better, tie, both_bad, or skip")
    skip_reason: str | None = spec("Optional reason given with a skip", default=None)
    answer: Choice | None = spec("The gold item's known answer for the criterion (null: it has none)", default=None)
    latency_ms: int = spec("Milliseconds from showing to submission", minimum=0, default=0)
    created_at: datetime = spec("When the answer was stored", factory=utc_now)


@dataclass(frozen=True)
class Retraction:
    """An annotator taking back their last submission shortly after it: appended, never a rewrite of a journal."""

    SCHEMA_VERSION: ClassVar[int] = 1
    showing_id: str = spec("Showing whose records (votes or ratings) no longer count", pattern=ID_PATTERN)
    annotator: str = spec("Login name of whoever retracted it: always the one who answered", pattern=ID_PATTERN)
    journal: Literal["votes", "ratings"] = spec("Journal holding the retracted records")
    created_at: datetime = spec("When the retraction was stored", factory=utc_now)


@dataclass(frozen=True)
class SegmentMark:
    """A time span where one clip of a showing fails one criterion, marked by the annotator and stored with their
    answer (same showing and request id); it counts exactly while that answer counts (an undo drops it too)."""

    SCHEMA_VERSION: ClassVar[int] = 1
    showing_id: str = spec("Showing the mark was made on; its vote or rating names the same one", pattern=ID_PATTERN)
    request_id: str = spec("Request id of the submission it came with", pattern=ID_PATTERN)
    annotator: str = spec("Login name, taken from the authenticated request", pattern=ID_PATTERN)
    condition_id: str = spec("Condition of the clip", pattern=ID_PATTERN)
    clip: str = spec("sha256 of the marked clip: one of the showing's clips", pattern=SHA256_PATTERN)
    criterion: str = spec("Criterion the clip fails in the span", pattern=ID_PATTERN)
    start_s: float = spec("Start of the span, seconds from the clip's start", minimum=0.0)
    end_s: float = spec("End of the span in seconds: after the start, within the clip", minimum=0.0)
    created_at: datetime = spec("When the mark was stored", factory=utc_now)


@dataclass(frozen=True)
class PreferencePair:
    """A win/lose pair a trainer consumes, with the evidence behind it."""

    SCHEMA_VERSION: ClassVar[int] = 1
    pair_id: str = spec("Stable id of the pair", pattern=ID_PATTERN)
    condition_id: str = spec("Condition of both clips", pattern=ID_PATTERN)
    chosen: str = spec("sha256 of the preferred clip", pattern=SHA256_PATTERN)
    rejected: str = spec("sha256 of the other clip", pattern=SHA256_PATTERN)
    criterion: str = spec("Criterion the preference is about", pattern=ID_PATTERN)
    source: PairSource = spec("human votes (their majority), auto-scores, or both; ranking: the order a "
                              "Bradley–Terry posterior of the condition's votes is sure of")
    margin: float = spec("Strength of the preference (vote share gap, score gap, or a ranking pair's strength gap "
                         "in logits)", default=0.0)
    votes: int = spec("Number of votes behind the decision (a ranking pair: on the pair itself)", minimum=0,
                      default=0)
    agreement: float = spec("Share of weighted votes agreeing with the decision (a ranking pair: the posterior "
                            "probability that its order is right)", minimum=0.0, maximum=1.0, default=1.0)
    split: Split = spec("train or heldout; split by condition", default="train")
    annotators: list[str] = spec("Annotators whose votes or ratings decided the pair", default=[])
    chosen_scores: dict[str, Any] = spec("Auto-scores of the chosen clip, {scorer/metric: value}", default={})
    rejected_scores: dict[str, Any] = spec("Auto-scores of the rejected clip, {scorer/metric: value}", default={})
    chosen_marks: list[list[float]] = spec(
        "Spans [start_s, end_s] where the votes behind the pair marked the chosen clip as failing the criterion "
        "(their union, sorted)", default=[])
    rejected_marks: list[list[float]] = spec(
        "Spans [start_s, end_s] where the votes behind the pair marked the rejected clip as failing the criterion "
        "(their union, sorted)", default=[])
    scores_disagree: bool | None = spec(
        "Whether the deciding auto-score prefers the rejected clip (null: no such score, or an auto pair)",
        default=None)


@dataclass(frozen=True)
class AnnotationTask:
    """What a campaign asks its annotators, saved with the campaign so every later step reads what was asked."""

    SCHEMA_VERSION: ClassVar[int] = 1
    mode: TaskMode = spec("ab (two clips of one condition side by side) or rating (1–5 per clip)", default="ab")
    criteria: list[str] = spec("Criteria asked, in display order", default=list(CRITERIA))
    definitions: dict[str, Any] = spec(
        "One-paragraph definition of each criterion, and of the verdicts tie and both_bad", default=DEFINITIONS)
    examples: dict[str, Any] = spec("Examples of worse and better clips per criterion (optional)", default=EXAMPLES)
    overlap: int = spec("Distinct annotators per item", minimum=1, default=3)
    gold_rate: float = spec("Share of showings that are gold items (A/B mode)", minimum=0.0, maximum=1.0,
                            default=0.1)
    instructions: str = spec("What annotators read before they start", default=INSTRUCTIONS)
    assign: AssignMode = spec("Which item comes next: round-robin over conditions, or active (the pair whose vote "
                              "tells most about the candidates' order; A/B mode)", default="round-robin")
    practice: int = spec("Gold items a new annotator answers first as practice, each followed by its known answers; "
                         "practice answers are not votes (0: no practice; A/B mode)", minimum=0, default=3)
    gold_feedback: bool = spec("Whether a gold item's known answers are shown after its vote once practice is over "
                               "(else nothing tells a gold item from a regular one)", default=False)


RECORD_TYPES: tuple[type, ...] = (Condition, Clip, Score, Annotator, Vote, Rating, IssuedShowing, PracticeAnswer,
                                Retraction, SegmentMark, PreferencePair, AnnotationTask)
