"""What an annotator learns from a gold item: its known answers beside theirs, as shown on their screen.

A new annotator's practice items are gold items whose answers are PracticeAnswer records, not votes
(campaign/practice.py); after each one, and after every gold vote when the task's `gold_feedback` is on, the
acknowledgement carries `answer_feedback`. Before the answer nothing sets a gold item apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from campaign.items import Item
from data_schemas import PracticeAnswer, Vote

_SHARED = tuple(f.name for f in dataclasses.fields(PracticeAnswer) if f.name != "answer")


def practice_answer(vote: Vote, item: Item) -> PracticeAnswer:
    """The practice record of what would have been a vote on a gold item, with the item's known answer."""
    return PracticeAnswer(**{name: getattr(vote, name) for name in _SHARED}, answer=item.gold.get(vote.criterion))


def answer_feedback(item: Item, left: str, choices: Mapping[str, str | None], criteria: Sequence[str],
                    definitions: Mapping[str, str]) -> list[dict[str, Any]]:
    """Per criterion with a known answer, in the task's order: {criterion, answer, given, correct, and the
    criterion's definition when they differ}; answer and given as shown (left, right, tie, both_bad; given None
    for a skip), `choices` as stored (a, b, tie, both_bad, skip)."""
    shown = {left: "left", ("b" if left == "a" else "a"): "right"}
    feedback = []
    for criterion in criteria:
        if criterion not in item.gold:
            continue
        answer, given = item.gold[criterion], choices.get(criterion)
        entry: dict[str, Any] = {"criterion": criterion, "answer": shown[answer],
                                 "given": None if given in (None, "skip") else shown.get(given, given),
                                 "correct": given == answer}
        if not entry["correct"]:
            entry["definition"] = definitions.get(criterion, "")
        feedback.append(entry)
    return feedback
