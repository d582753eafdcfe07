import shutil

import numpy as np
import pytest
import torch

from safetensors.torch import load_file, save_file

from campaign.store import Campaign
from data_schemas import UserError
from pairs.candidates.ingest import ingest_rows
from pairs.candidates.manifest import ManifestRow, read_manifest
from media_io.codecs import write_video
from pairs.scoring.score import score_campaign
from pairs.scoring.scorers import NAMES, ScorerOptions, load_scorers


def scorers(*names):
    ready, unavailable = load_scorers(ScorerOptions(scorers=tuple(names)))
    assert not unavailable
    return ready


@pytest.fixture(scope="module")
def scored_once(tiny_world, tmp_path_factory):
    campaign = Campaign.open(tmp_path_factory.mktemp("scored") / "campaign", create=True)
    ingest_rows(campaign, read_manifest(tiny_world)[0], progress=False)
    return campaign.root, score_campaign(campaign, scorers(*NAMES), progress=False)


@pytest.fixture
def scored(scored_once, tmp_path):
    """A scored campaign of the tiny world, each test its own copy (scoring it takes most of a test's time)."""
    root, run = scored_once
    shutil.copytree(root, tmp_path / "campaign")
    return Campaign.open(tmp_path / "campaign"), run


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
    assert run.scored == dict.fromkeys(NAMES, 8)
    for condition, clips in values(campaign).items():
        good = clips["in_sync"]
        assert clips["shift"]["sync/lse_c"] < good["sync/lse_c"], condition
        assert clips["shift"]["sync/lse_d"] > good["sync/lse_d"], condition
        # at offset 0 a late mouth scores lower than at its own best offset; in sync the two are the same number
        assert clips["shift"]["sync/lse_c_at_0"] < clips["shift"]["sync/lse_c"] - 1.0, condition
        assert good["sync/lse_c_at_0"] == good["sync/lse_c"], condition
        assert good["identity/csim"] > 0.9, condition
        assert clips["frozen_mouth"]["expression/mouth_std"] < 0.3 * good["expression/mouth_std"], condition
        assert clips["frozen_mouth"]["expression/mouth_audio"] < good["expression/mouth_audio"] - 0.3, condition
        assert clips["jitter"]["motion/jitter"] > 2 * good["motion/jitter"], condition
        assert 0.9 < good["motion/flicker"] <= 1.0 and good["quality/sharpness"] > 0


def test_rerun_is_cached(scored):
    campaign, _ = scored
    before = campaign.table("scores").num_rows
    again = score_campaign(campaign, scorers(*NAMES), progress=False)
    assert again.cached == 8 and again.scored == dict.fromkeys(NAMES, 0)
    assert campaign.table("scores").num_rows == before


def test_unscorable_clips_get_reasons(scored, tmp_path, tiny_world):
    campaign, _ = scored
    row = next(r for r in read_manifest(tiny_world)[0])
    faceless = tmp_path / "faceless.mp4"
    write_video(faceless, np.full((30, 64, 64, 3), 120, np.uint8), 25.0, np.zeros(19200, np.float32))
    ingest_rows(campaign, [ManifestRow(line=1, condition_id=row.condition_id, clip=faceless,
                                       reference_image=row.reference_image, audio=row.audio, pose=row.pose,
                                       generator="test")], progress=False)
    run = score_campaign(campaign, scorers("expression"), progress=False)
    assert run.skipped["expression"] == {"no face found in 100% of frames": 4}
    reasons = campaign.connect().execute("SELECT DISTINCT reason FROM scores WHERE value IS NULL").fetchall()
    assert reasons == [("no face found in 100% of frames",)]


def test_a_silent_clip_gets_every_score_but_mouth_audio(scored, tmp_path, tiny_world):
    from media_io.codecs import read_frames

    campaign, _ = scored
    row = next(r for r in read_manifest(tiny_world)[0])
    silent = tmp_path / "silent.mp4"
    write_video(silent, read_frames(row.clip), 25.0)  # the same frames, no audio track
    report = ingest_rows(campaign, [ManifestRow(line=1, condition_id=row.condition_id, clip=silent,
                                                reference_image=row.reference_image, audio=row.audio, pose=row.pose,
                                                generator="test")], require_audio=False, progress=False)
    assert report.ingested == 1
    run = score_campaign(campaign, scorers("expression", "sync"), progress=False)
    assert run.scored == {"expression": 1, "sync": 1}
    assert run.skipped == {"expression": {"no audio track": 1}, "sync": {"no audio track": 4}}
    rows = dict(campaign.connect().execute(
        "SELECT metric, coalesce(reason, 'ok') FROM scores s JOIN clips c ON c.sha256 = s.clip "
        "WHERE c.generator = 'test' AND s.scorer = 'expression'").fetchall())
    assert rows == {"mouth_std": "ok", "brow_std": "ok", "blinks_per_minute": "ok", "mouth_audio": "no audio track"}


def test_other_weights_replace_the_scores_and_name_themselves(scored, tmp_path):
    from syncnet.networks import SHIPPED

    campaign, _ = scored
    other = tmp_path / "syncnet"
    shutil.copytree(SHIPPED, other)
    ready, _ = load_scorers(ScorerOptions(scorers=("sync",), syncnet_weights=other))
    assert ready[0].version.startswith("2+embedded-syncnet:")
    weights = load_file(other / "model.safetensors")  # other weights: another digest, so another version
    weights["netfclip.3.bias"] += 0.01
    save_file(weights, other / "model.safetensors")
    changed, _ = load_scorers(ScorerOptions(scorers=("sync",), syncnet_weights=tmp_path / "syncnet"))
    assert changed[0].version != ready[0].version
    run = score_campaign(campaign, changed, progress=False)
    assert run.scored == {"sync": 8}
    versions = campaign.connect().execute("SELECT DISTINCT scorer_version FROM scores WHERE scorer = 'sync'").fetchall()
    assert versions == [(changed[0].version,)]


def test_a_scorer_without_weights_is_skipped_with_the_fix(monkeypatch, tmp_path):
    import syncnet.networks

    monkeypatch.setattr(syncnet.networks, "SHIPPED", tmp_path / "nothing")
    ready, unavailable = load_scorers(ScorerOptions(scorers=("sync", "motion",)))
    assert [s.name for s in ready] == ["motion"]
    assert "pass --syncnet-weights PATH" in unavailable["sync"]


def test_unknown_scorer_and_bad_weights_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="--scorers lips: choose from"):
        load_scorers(ScorerOptions(scorers=("lips",)))
    with pytest.raises(UserError, match="no such SyncNet weights"):
        load_scorers(ScorerOptions(scorers=("sync",), syncnet_weights=tmp_path / "missing.model"))
    (tmp_path / "junk.model").write_bytes(b"not torch")
    with pytest.raises(UserError, match=r"junk.model: not a torch weights file; give syncnet_python's syncnet_v2.model$"):
        load_scorers(ScorerOptions(scorers=("sync",), syncnet_weights=tmp_path / "junk.model"))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.model")
    with pytest.raises(UserError, match="other.model: not SyncNet weights"):
        load_scorers(ScorerOptions(scorers=("sync",), syncnet_weights=tmp_path / "other.model"))
    (tmp_path / "face.png").write_bytes(b"png")
    with pytest.raises(UserError, match="--arcface-model .*face.png: no .onnx model there"):
        load_scorers(ScorerOptions(scorers=("identity",), arcface_model=tmp_path / "face.png"))
    (tmp_path / "pack.v2").mkdir()  # a model pack folder may have a dot in its name
    (tmp_path / "pack.v2" / "w600k.onnx").write_bytes(b"junk")
    with pytest.raises(UserError, match="w600k.onnx: not an ONNX model"):
        load_scorers(ScorerOptions(scorers=("identity",), arcface_model=tmp_path / "pack.v2"))


def test_every_metric_says_which_way_is_better():
    from pairs.scoring.scorers import HIGHER_IS_BETTER

    ready, unavailable = load_scorers(ScorerOptions())
    assert not unavailable
    assert {f"{s.name}/{m}" for s in ready for m in s.metrics} == set(HIGHER_IS_BETTER)


def test_score_and_summary_commands_show_every_scorer(scored, monkeypatch):
    from typer.testing import CliRunner

    import syncnet.networks
    from pairs.cli import app

    campaign, _ = scored
    runner = CliRunner()
    result = runner.invoke(app, ["score", "--campaign", str(campaign.root)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "already scored: 8 clips" in result.output and "sync: version 2+embedded-syncnet:" in result.output
    summary = runner.invoke(app, ["summary", "--campaign", str(campaign.root)], terminal_width=200)
    assert all(metric in summary.output for metric in ("lse_c", "lse_d", "csim", "mouth_audio", "jitter", "sharpness"))
    monkeypatch.setattr(syncnet.networks, "SHIPPED", campaign.root / "no-weights")
    result = runner.invoke(app, ["score", "--campaign", str(campaign.root), "--scorers", "sync"], terminal_width=200)
    assert result.exit_code == 0 and "sync: skipped, no SyncNet weights; pass --syncnet-weights PATH" in result.output
