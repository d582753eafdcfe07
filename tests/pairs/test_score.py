import json

import numpy as np
import pytest

from annotate.store import Campaign
from pairs.ingest import ingest_rows
from pairs.manifest import ManifestRow, read_manifest
from pairs.media import write_video
from pairs.score import score_campaign


@pytest.fixture
def scored(tiny_world, tmp_path):
    campaign = Campaign.open(tmp_path / "campaign", create=True)
    ingest_rows(campaign, read_manifest(tiny_world)[0], progress=False)
    run = score_campaign(campaign, ["expression", "motion", "quality"], progress=False)
    return campaign, run


def values(campaign):
    con = campaign.connect()
    rows = con.execute("""
        SELECT c.condition_id, json_extract_string(c.params, '$.degradation'), s.scorer || '/' || s.metric, s.value
        FROM scores s JOIN clips c ON c.sha256 = s.clip
    """).fetchall()
    out = {}
    for condition, degradation, metric, value in rows:
        out.setdefault(condition, {}).setdefault(degradation or "in_sync", {})[metric] = value
    return out


def test_degradations_are_caught_by_the_metric_that_should_catch_them(scored):
    campaign, run = scored
    assert run.scored == {"expression": 8, "motion": 8, "quality": 8}
    for condition, clips in values(campaign).items():
        good = clips["in_sync"]
        assert clips["frozen_mouth"]["expression/mouth_std"] < 0.3 * good["expression/mouth_std"], condition
        assert clips["frozen_mouth"]["expression/mouth_audio"] < good["expression/mouth_audio"] - 0.3, condition
        assert clips["jitter"]["motion/jitter"] > 2 * good["motion/jitter"], condition
        assert 0.9 < good["motion/flicker"] <= 1.0 and good["quality/sharpness"] > 0


def test_rerun_is_cached(scored):
    campaign, _ = scored
    before = campaign.table("scores").num_rows
    again = score_campaign(campaign, ["expression", "motion", "quality"], progress=False)
    assert again.cached == 8 and again.scored == {"expression": 0, "motion": 0, "quality": 0}
    assert campaign.table("scores").num_rows == before


def test_unscorable_clips_get_reasons(scored, tmp_path, tiny_world):
    campaign, _ = scored
    row = next(r for r in read_manifest(tiny_world)[0])
    faceless = tmp_path / "faceless.mp4"
    write_video(faceless, np.full((30, 64, 64, 3), 120, np.uint8), 25.0, np.zeros(19200, np.float32))
    ingest_rows(campaign, [ManifestRow(line=1, condition_id=row.condition_id, clip=faceless,
                                       reference_image=row.reference_image, audio=row.audio, pose=row.pose,
                                       generator="test")], progress=False)
    run = score_campaign(campaign, ["expression"], progress=False)
    assert run.skipped["expression"] == {"no face found in 100% of frames": 4}
    reasons = campaign.connect().execute("SELECT DISTINCT reason FROM scores WHERE value IS NULL").fetchall()
    assert reasons == [("no face found in 100% of frames",)]


def test_a_silent_clip_gets_every_score_but_mouth_audio(scored, tmp_path, tiny_world):
    from pairs.media import read_frames

    campaign, _ = scored
    row = next(r for r in read_manifest(tiny_world)[0])
    silent = tmp_path / "silent.mp4"
    write_video(silent, read_frames(row.clip), 25.0)  # the same frames, no audio track
    report = ingest_rows(campaign, [ManifestRow(line=1, condition_id=row.condition_id, clip=silent,
                                                reference_image=row.reference_image, audio=row.audio, pose=row.pose,
                                                generator="test")], require_audio=False, progress=False)
    assert report.ingested == 1
    run = score_campaign(campaign, ["expression"], progress=False)
    assert run.scored == {"expression": 1} and run.skipped["expression"] == {"no audio track": 1}
    rows = dict(campaign.connect().execute(
        "SELECT metric, coalesce(reason, 'ok') FROM scores s JOIN clips c ON c.sha256 = s.clip "
        "WHERE c.generator = 'test' AND s.scorer = 'expression'").fetchall())
    assert rows == {"mouth_std": "ok", "brow_std": "ok", "blinks_per_minute": "ok", "mouth_audio": "no audio track"}
