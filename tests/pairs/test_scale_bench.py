"""bench.scale's pieces at a tiny size: the synthetic campaign is a real one, and both journal layouts give equal
pairs."""

import re

import pytest

from typer.testing import CliRunner

from bench.scale import (
    append_latency, free_port, republish_seconds, run_measured, single_journal_copy, synthetic_campaign,
)
from campaign.journal import read_journal, sealed_segments
from campaign.retractions import counted
from campaign.store import Campaign
from data_schemas import CRITERIA, Vote
from pairs.cli import app
from pairs.preferences.build import BuildOptions, build_pairs
from pairs.stats import campaign_stats


def test_a_tiny_synthetic_campaign_reads_the_same_from_segments_and_from_one_journal_file(tmp_path):
    synthetic = synthetic_campaign(tmp_path / "campaign", clips=40, votes=2_000, segment_bytes=100_000)
    campaign = Campaign.open(synthetic.root)
    assert [campaign.table(t).num_rows for t in ("conditions", "clips", "scores")] == [10, 40, 80]
    assert len(sealed_segments(campaign.journal_path("votes"))) == synthetic.segments > 1
    votes = campaign.table("votes")
    assert votes.num_rows == 2_000 and synthetic.live_votes == 2_000 - synthetic.segments * (
        (2_000 - synthetic.live_votes) // synthetic.segments)
    assert set(votes["clip_a"].to_pylist()) <= set(campaign.table("clips")["sha256"].to_pylist())
    assert 0 < counted(campaign, "votes").num_rows < 2_000  # the retracted showings' votes do not count

    single = Campaign.open(single_journal_copy(synthetic, tmp_path / "single"))
    assert not sealed_segments(single.journal_path("votes"))
    assert read_journal(single.journal_path("votes"), Vote).equals(votes)
    pairs = build_pairs(campaign, BuildOptions())
    assert pairs.num_rows > 0 and pairs.equals(build_pairs(single, BuildOptions()))
    assert set(pairs["criterion"].to_pylist()) == {"overall"}
    stats, single_stats = campaign_stats(campaign, bootstrap=0), campaign_stats(single, bootstrap=0)
    alpha = stats.pop("alpha")  # summed in another order: equal to rounding
    assert single_stats.pop("alpha") == pytest.approx(alpha) and set(alpha) == set(CRITERIA)
    assert stats == single_stats
    assert sum(a["showings"] for a in stats["annotators"]) == counted(campaign, "votes").num_rows // len(CRITERIA)

    summary = CliRunner().invoke(app, ["summary", "--campaign", str(synthetic.root)], terminal_width=200)
    assert summary.exit_code == 0, summary.output
    undone = 2_000 - counted(campaign, "votes").num_rows
    assert re.search(rf"votes\s*│\s*2000\s*│\s*{undone}\s*│", summary.output)  # all rows, and those not counted
    assert "c0000009" in summary.output  # all 10 conditions


def test_republishing_a_score_batch_and_measuring_a_command(tmp_path):
    synthetic = synthetic_campaign(tmp_path / "campaign", clips=40, votes=0)
    campaign = Campaign.open(synthetic.root)
    seconds = republish_seconds(campaign, seed=0)
    assert seconds["partitioned"] > 0 and seconds["whole"] > 0
    versions = campaign.table("scores")["scorer_version"].to_pylist()
    assert versions.count("synthetic-2") == 64 and len(versions) == 80  # 32 clips' two scores replaced
    measured = run_measured(["pairs", "summary", "--campaign", str(synthetic.root)])
    assert "clips per condition" in measured["output"] and measured["peak_mib"] > 1 and measured["cpu_seconds"] > 0


def test_measuring_the_annotation_server_start_on_a_synthetic_campaign(tmp_path):
    synthetic = synthetic_campaign(tmp_path / "campaign", clips=40, votes=400)
    measured = run_measured(["annotate", "serve", "--port", str(free_port()), "--exit-after-simulation", "--campaign",
                             str(synthetic.root)])
    assert "annotation app: http://" in measured["output"] and "60 items" in measured["output"]
    assert measured["peak_mib"] > 1


def test_append_latency_seals_segments_as_it_measures(tmp_path):
    clips = synthetic_campaign(tmp_path / "campaign", clips=40, votes=0).root
    measured = append_latency(tmp_path, Campaign.open(clips).table("clips"), seed=0, segment_bytes=20_000)
    assert measured["seals"] >= 1 and measured["appends"] > 10
    assert 0 < measured["median"] <= measured["max"]
    assert [p.name for p in tmp_path.iterdir()] == ["campaign"]  # the journal it wrote is gone
