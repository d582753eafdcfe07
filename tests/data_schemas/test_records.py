from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_schemas import (
    RECORD_TYPES, Annotator, Clip, Condition, PracticeAnswer, PreferencePair, Rating, Score, SegmentMark, UserError,
    Vote, arrow_schema, conform, from_table, require_valid, to_table, validate,
)

SHA_A, SHA_B = "a" * 64, "b" * 64
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


def examples():
    return [
        Condition(condition_id="c1", reference_image=f"media/aa/{SHA_A}.png", audio=f"media/bb/{SHA_B}.wav",
                  pose=None, text="hello", created_at=WHEN),
        Clip(sha256=SHA_A, condition_id="c1", media_path=f"media/aa/{SHA_A}.mp4", generator="world",
             generator_version="1", fps=25.0, frames=50, width=64, height=64, duration=2.0, has_audio=True, seed=7,
             params={"degradation": "shift", "shift_frames": 4}, created_at=WHEN),
        Score(clip=SHA_A, scorer="sync", scorer_version="1+embedded", metric="lse_c", value=7.5,
              details={"offset": -1}, created_at=WHEN),
        Score(clip=SHA_B, scorer="sync", scorer_version="1", metric="lse_c", value=None, reason="no face found",
              created_at=WHEN),
        Annotator(name="alice", role="admin", password_hash="scrypt$1$1$1$00$00", created_at=WHEN),
        Vote(showing_id="s1", request_id="r1", annotator="alice", condition_id="c1", clip_a=SHA_A, clip_b=SHA_B,
             left="b", criterion="lip_sync", choice="both_bad", latency_ms=1234, created_at=WHEN),
        Rating(showing_id="s2", request_id="r2", annotator="alice", condition_id="c1", clip=SHA_A,
               criterion="overall", score=4, created_at=WHEN),
        PracticeAnswer(showing_id="s3", request_id="r3", annotator="alice", condition_id="c1", clip_a=SHA_A,
                       clip_b=SHA_B, left="a", criterion="lip_sync", choice="tie", answer="a", created_at=WHEN),
        SegmentMark(showing_id="s1", request_id="r1", annotator="alice", condition_id="c1", clip=SHA_B,
                    criterion="lip_sync", start_s=0.5, end_s=1.25, created_at=WHEN),
        PreferencePair(pair_id="p1", condition_id="c1", chosen=SHA_A, rejected=SHA_B, criterion="overall",
                       source="human", margin=0.5, votes=3, agreement=2 / 3, split="heldout",
                       rejected_marks=[[0.0, 0.5], [1.0, 1.25]]),
    ]


@pytest.mark.parametrize("record", examples(), ids=lambda r: type(r).__name__)
def test_round_trip_through_arrow_and_parquet(record, tmp_path):
    assert validate(record) == []
    table = to_table([record], type(record))
    assert table.schema == arrow_schema(type(record))
    pq.write_table(table, tmp_path / "t.parquet")
    back = pq.read_table(tmp_path / "t.parquet")
    assert back.schema.metadata[b"portrait_dpo.record"] == type(record).__name__.encode()
    assert from_table(back, type(record)) == [record]


def test_every_record_type_has_a_version_and_documented_columns():
    for record_type in RECORD_TYPES:
        schema = arrow_schema(record_type)
        assert schema.metadata[b"portrait_dpo.schema_version"] == str(record_type.SCHEMA_VERSION).encode()
        assert all(field.metadata[b"doc"] for field in schema)


def test_validation_names_each_problem():
    vote = Vote(showing_id="s 1", request_id="r1", annotator="alice", condition_id="c1", clip_a="xyz", clip_b=SHA_B,
                left="middle", criterion="overall", choice="maybe", latency_ms=-5, created_at=WHEN)
    errors = validate(vote)
    assert any(e.startswith("Vote.showing_id: 's 1' does not match") for e in errors)
    assert any(e.startswith("Vote.clip_a: 'xyz' does not match") for e in errors)
    assert "Vote.left: 'middle' is not one of a, b" in errors
    assert "Vote.choice: 'maybe' is not one of a, b, tie, both_bad, skip" in errors
    assert "Vote.latency_ms: -5 is below the minimum 0" in errors
    assert len(errors) == 5


def test_validation_of_types_ranges_and_required_fields():
    rating = Rating(showing_id="s", request_id="r", annotator="a", condition_id="c", clip=SHA_A, criterion="x",
                    score=6, created_at=WHEN)
    assert validate(rating) == ["Rating.score: 6 is above the maximum 5"]
    clip = Clip(sha256=SHA_A, condition_id="c", media_path=f"media/aa/{SHA_A}.mp4", generator="g",
                generator_version=None, fps="25", frames=True, width=64, height=64, duration=1.0, has_audio=True)
    errors = validate(clip)
    assert "Clip.generator_version is required" in errors
    assert "Clip.fps: expected float, got str '25'" in errors
    assert "Clip.frames: expected int, got bool True" in errors
    naive = Condition(condition_id="c", reference_image=f"media/aa/{SHA_A}.png", audio=f"media/aa/{SHA_A}.wav",
                      created_at=datetime(2026, 1, 1))
    assert validate(naive) == ["Condition.created_at: timestamp must carry a time zone (use UTC)"]


def test_require_valid_raises_user_error_with_location():
    bad = Annotator(name="alice", role="root", password_hash="x")
    with pytest.raises(UserError, match=r"^users.csv line 3: Annotator.role: 'root' is not one of annotator, admin$"):
        require_valid(bad, "users.csv line 3")


def test_conform_reports_missing_columns_and_newer_versions():
    table = to_table(examples()[-1:], PreferencePair).drop_columns(["chosen", "split"])
    with pytest.raises(UserError, match="pairs.parquet: missing PreferencePair columns chosen, split"):
        conform(table, PreferencePair, "pairs.parquet")
    newer = to_table(examples()[-1:], PreferencePair)
    newer = newer.replace_schema_metadata({b"portrait_dpo.schema_version": b"99"})
    with pytest.raises(UserError, match="schema version 99 is newer"):
        conform(newer, PreferencePair, "x")
    wrong_type = to_table(examples()[-1:], PreferencePair).set_column(
        7, "votes", pa.array(["many"]))
    with pytest.raises(UserError, match="do not fit the PreferencePair schema"):
        conform(wrong_type, PreferencePair, "x")
