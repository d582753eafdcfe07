"""Segment marks as a submission sends them → SegmentMark records, or one Refused(400) line saying what is wrong.

A mark names its clip as the page shows it (`left` / `right` in A/B mode, `clip` in rating mode: the keys of the
mode's captions), never by sha256: the annotator saw sides, not clips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from annotate.modes import AnnotationMode
from annotate.showing import Refused, Showing, quoted
from data_schemas import SegmentMark
from data_schemas.marks import mark_problems

MAX_MARKS = 200  # marks per submission: far more than a clip of a few seconds needs
_FIELDS = ("clip", "criterion", "start_s", "end_s")


def mark_records(mode: AnnotationMode, showing: Showing, marks: Any, durations: Mapping[str, float | None],
                 criteria: Sequence[str], **common: Any) -> list[SegmentMark]:
    """The records of a submission's marks ([{clip, criterion, start_s, end_s}], or None for none); `common`
    holds the fields every record of the submission shares (showing_id, request_id, annotator, …)."""
    if marks is None:
        return []
    if not isinstance(marks, list):
        raise Refused(400, "marks must be a list of {clip, criterion, start_s, end_s}, or null")
    if len(marks) > MAX_MARKS:
        raise Refused(400, f"{len(marks)} marks: at most {MAX_MARKS} per submission")
    sides = dict(zip((key for key, _ in mode.captions), mode.clips(showing)))
    records = []
    for n, mark in enumerate(marks, 1):
        if not isinstance(mark, dict) or set(mark) != set(_FIELDS):
            raise Refused(400, f"mark {n}: give exactly {', '.join(_FIELDS)}")
        if not isinstance(mark["clip"], str) or mark["clip"] not in sides:
            raise Refused(400, f"mark {n}: clip {quoted(mark['clip'])} is not one of {', '.join(sides)}")
        start, end = (_seconds(mark[key], n, key) for key in ("start_s", "end_s"))
        record = SegmentMark(clip=sides[mark["clip"]], criterion=mark["criterion"], start_s=start, end_s=end,
                             **common)
        problems = mark_problems(record, {sides[k]: durations.get(sides[k]) for k in sides}, criteria)
        if problems:
            raise Refused(400, f"mark {n}: " + "; ".join(problems))
        records.append(record)
    return records


def _seconds(value: Any, n: int, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Refused(400, f"mark {n}: {key} {quoted(value)} is not a number of seconds")
    try:
        return float(value)
    except OverflowError:  # an integer past float's range
        raise Refused(400, f"mark {n}: {key} is far longer than any clip") from None
