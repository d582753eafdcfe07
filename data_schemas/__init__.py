"""Records, Arrow schemas and schema versions: the single source of truth for every column."""

from data_schemas.constants import CRITERIA, FPS, SAMPLE_RATE
from data_schemas.errors import UserError
from data_schemas.record import arrow_schema, conform, from_table, require_valid, to_rows, to_table, validate
from data_schemas.records import (
    RECORD_TYPES,
    AnnotationTask,
    Annotator,
    Clip,
    Condition,
    PracticeAnswer,
    PreferencePair,
    Rating,
    Retraction,
    Score,
    SegmentMark,
    Vote,
    utc_now,
)

__all__ = [
    "CRITERIA", "FPS", "SAMPLE_RATE", "RECORD_TYPES", "AnnotationTask", "Annotator", "Clip", "Condition",
    "PracticeAnswer", "PreferencePair", "Rating", "Retraction", "Score", "SegmentMark", "UserError", "Vote",
    "arrow_schema", "conform", "from_table", "require_valid", "to_rows", "to_table", "utc_now", "validate",
]
