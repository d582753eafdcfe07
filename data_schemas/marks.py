"""What makes a segment mark valid beyond its own fields, and the one way marked spans are merged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from data_schemas.record import validate
from data_schemas.records import SegmentMark

# A span may end this far past the stored duration: the page's clock rounds to the millisecond.
DURATION_SLACK_S = 1e-3


def mark_problems(mark: SegmentMark, durations: Mapping[str, float | None], criteria: Sequence[str]) -> list[str]:
    """Every problem with a mark made on a showing whose clips have `durations` (sha256 → seconds) under a task
    asking `criteria`; empty when it is valid."""
    problems = validate(mark)
    if problems:
        return problems
    if mark.start_s >= mark.end_s:
        problems.append(f"mark {mark.start_s:g}–{mark.end_s:g} s: the start must come before the end")
    if mark.clip not in durations:
        problems.append(f"mark on clip {mark.clip[:12]}…: not one of the clips shown")
    else:
        duration = durations[mark.clip]
        if duration is not None and mark.end_s > duration + DURATION_SLACK_S:
            problems.append(f"mark {mark.start_s:g}–{mark.end_s:g} s: ends after the clip ({duration:g} s)")
    if mark.criterion not in criteria:
        problems.append(f"mark criterion {mark.criterion!r}: not one the task asks ({', '.join(criteria)})")
    return problems


def merged_spans(spans: Iterable[Sequence[float]]) -> list[list[float]]:
    """The union of [start, end] spans as sorted, disjoint spans (touching spans join)."""
    merged: list[list[float]] = []
    for start, end in sorted((float(s), float(e)) for s, e in spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged
