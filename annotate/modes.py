"""One object per annotation mode: the record it stores, in which journal, about which items, which answers
it accepts, and how its page asks. The service, the server and the CLI go through these objects; nothing
else decides by the mode's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from annotate.showing import Refused, Showing, quoted
from campaign.items import Item, ab_items, rating_items
from campaign.store import Campaign
from data_schemas import AnnotationTask, Rating, Vote


# The player's keys (annotate/player.js), the same in every mode.
PLAYER_KEYS = ("<b>Space</b> play/pause · <b>[ ]</b> speed 0.25× 0.5× 1× · <b>, .</b> one frame back/forward · "
               "<b>Z</b> mouth zoom · <b>I O</b> loop from/to (or drag under the timeline) · <b>L</b> whole clip · "
               "<b>M</b> / <b>Shift+M</b> mark where the first / second clip fails the highlighted criterion (the "
               "loop span, else this second) · <b>R</b> replay · <b>S</b> skip")


class AnnotationMode(ABC):
    """What differs between annotation modes; everything else (logins, assignment, durability) is shared."""

    name: ClassVar[str]
    record_type: ClassVar[type]
    journal: ClassVar[str]  # the campaign journal its records go to
    key_columns: ClassVar[tuple[str, ...]]  # journal columns naming the item a record is about
    answer_column: ClassVar[str]  # journal column of the answer: "skip" or null for a skip
    question: ClassVar[str]  # the page's heading
    tab: ClassVar[str]
    captions: ClassVar[tuple[tuple[str, str], ...]]  # (payload key, caption) of each clip shown, in page order
    submit_api: ClassVar[str]  # Gradio API name of the submission
    choices: ClassVar[tuple[tuple[str, str], ...]]  # (button label, answer) offered per criterion
    verdicts: ClassVar[tuple[str, ...]]  # answers that need a definition of their own (tie, both bad)
    shortcuts: ClassVar[str]

    @abstractmethod
    def items(self, campaign: Campaign, criteria: tuple[str, ...]) -> list[Item]:
        """Everything there is to judge in the campaign."""

    @abstractmethod
    def item_key(self, item: Item) -> tuple[str, ...]:
        """The values of `key_columns` that a record about this item carries."""

    @abstractmethod
    def clips(self, showing: Showing) -> tuple[str, ...]:
        """The sha256 of each clip shown, in the order of `captions`; the first one is the clock."""

    @abstractmethod
    def stored_answer(self, showing: Showing, criterion: str, answer: Any) -> Any:
        """The value stored for an annotator's answer, or Refused(400) naming the answers allowed."""

    @abstractmethod
    def record(self, showing: Showing, criterion: str, answer: Any, **common: Any) -> Any:
        """The record of one criterion of a showing; `answer` is None for a skip."""


class ABMode(AnnotationMode):
    """Two candidates of one condition side by side; per criterion left or right better, tie or both bad."""

    name = "ab"
    record_type = Vote
    journal = "votes"
    key_columns = ("clip_a", "clip_b")
    answer_column = "choice"
    question = "which clip is better?"
    tab = "Vote"
    captions = (("left", "A (left)"), ("right", "B (right)"))
    submit_api = "submit_vote"
    choices = (("A better", "left"), ("B better", "right"), ("Tie", "tie"), ("Both bad", "both_bad"))
    verdicts = ("tie", "both_bad")
    shortcuts = ("Keys: <b>A</b> / <b>B</b> A or B better · <b>T</b> tie · <b>X</b> both bad (the highlighted "
                 "criterion, then the next) · <b>↑ ↓</b> move · <b>Enter</b> submit · <b>U</b> undo · " + PLAYER_KEYS)

    def items(self, campaign: Campaign, criteria: tuple[str, ...]) -> list[Item]:
        """Every clip pair of a condition; the world's in-sync clip against a degraded one is gold."""
        return ab_items(campaign, criteria)

    def item_key(self, item: Item) -> tuple[str, ...]:
        """(clip_a, clip_b)."""
        return item.clip_a, item.clip_b

    def clips(self, showing: Showing) -> tuple[str, ...]:
        """The pair as shown: the clip drawn for the left, then the other."""
        item = showing.item
        return (item.clip_a, item.clip_b) if showing.left == "a" else (item.clip_b, item.clip_a)

    def stored_answer(self, showing: Showing, criterion: str, answer: Any) -> str:
        """left / right as shown → the stored clip slot a / b; tie and both_bad unchanged.

        Only the answers the page offers pass: a raw slot `a` or `b` means nothing to someone who saw
        A on the left and would store the wrong clip half the time.
        """
        allowed = [value for _, value in self.choices]
        if not isinstance(answer, str) or answer not in allowed:
            raise Refused(400, f"{criterion}: {quoted(answer)} is not one of {', '.join(allowed)}")
        other = "b" if showing.left == "a" else "a"
        return {"left": showing.left, "right": other}.get(answer, answer)

    def record(self, showing: Showing, criterion: str, answer: str | None, **common: Any) -> Vote:
        """A Vote; a skip is stored as the choice `skip`."""
        item = showing.item
        return Vote(clip_a=item.clip_a, clip_b=item.clip_b, left=showing.left, criterion=criterion,
                    choice=answer or "skip", is_gold=item.is_gold, **common)


class RatingMode(AnnotationMode):
    """One clip at a time, a 1–5 score per criterion (Hallo4's protocol)."""

    name = "rating"
    record_type = Rating
    journal = "ratings"
    key_columns = ("clip",)
    answer_column = "score"
    question = "how good is this clip?"
    tab = "Rate"
    captions = (("clip", "clip"),)
    submit_api = "submit_rating"
    choices = (("1 worst", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5 best", "5"))
    verdicts = ()
    shortcuts = ("Keys: <b>1</b>–<b>5</b> score the highlighted criterion, then the next · <b>↑ ↓</b> move · "
                 "<b>Enter</b> submit · <b>U</b> undo · " + PLAYER_KEYS)

    def items(self, campaign: Campaign, criteria: tuple[str, ...]) -> list[Item]:
        """Every clip, one item each (no gold)."""
        return rating_items(campaign)

    def item_key(self, item: Item) -> tuple[str, ...]:
        """(clip,)."""
        return (item.clip_a,)

    def clips(self, showing: Showing) -> tuple[str, ...]:
        """The one clip."""
        return (showing.item.clip_a,)

    def stored_answer(self, showing: Showing, criterion: str, answer: Any) -> int:
        """A score 1–5, given as a number or as the page's text."""
        allowed = [value for _, value in self.choices]
        if isinstance(answer, int) and not isinstance(answer, bool) and str(answer) in allowed:
            return answer
        if isinstance(answer, str) and answer in allowed:
            return int(answer)
        raise Refused(400, f"{criterion}: {quoted(answer)} is not a score from 1 to 5")

    def record(self, showing: Showing, criterion: str, answer: int | None, **common: Any) -> Rating:
        """A Rating; a skip has no score."""
        return Rating(clip=showing.item.clip_a, criterion=criterion, score=answer, **common)


MODES: dict[str, AnnotationMode] = {mode.name: mode for mode in (ABMode(), RatingMode())}


def mode_of(task: AnnotationTask) -> AnnotationMode:
    """The mode object of a task."""
    return MODES[task.mode]
