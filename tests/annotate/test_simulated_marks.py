"""Scripted annotators' segment marks: the seconds of the clip voted against where SyncNet finds it syncs worse."""

import numpy as np

from annotate.server import launch
from annotate.settings import ServerSettings
from annotate.simulate import Preference, simulate
from annotate.simulated_marks import SyncBySecond, loser_marks, sync_by_second
from campaign.marks import marks
from data_schemas import AnnotationTask, Score
from tests.annotate.test_app import free_port, world_campaign
from tests.annotate.test_task import annotate


def test_marks_cover_the_seconds_where_the_clip_voted_against_syncs_worse():
    by_second = {"a": SyncBySecond(np.array([0.5, 0.1, 0.1]), 2.4), "b": SyncBySecond(np.array([0.2, 0.4, 0.3]), 2.6)}
    item = {"left": {"clip": "a"}, "right": {"clip": "b"}, "criteria": ["lip_sync", "overall"]}
    assert loser_marks(item, "right", by_second) == [
        {"clip": "left", "criterion": "lip_sync", "start_s": 1.0, "end_s": 2.0},
        {"clip": "left", "criterion": "lip_sync", "start_s": 2.0, "end_s": 2.4}]  # the partial last second
    assert loser_marks(item, "left", by_second) == [
        {"clip": "right", "criterion": "lip_sync", "start_s": 0.0, "end_s": 1.0}]
    assert loser_marks(item, "tie", by_second) == []
    assert loser_marks({**item, "criteria": ["overall"]}, "left", by_second) == []
    assert loser_marks({**item, "right": {"clip": "unread"}}, "left", by_second) == []


def test_a_simulation_with_marks_stores_each_votes_marks_on_the_clip_it_went_against(tiny_world, tmp_path):
    campaign = world_campaign(tmp_path / "campaign", tiny_world)
    by_second = sync_by_second(campaign)
    # The annotators follow each clip's mean confidence per second without noise, so every clip voted against
    # syncs worse in at least one second: each vote must carry marks (random votes may leave all six unmarked).
    campaign.add_scores([Score(clip=clip, scorer="sync", scorer_version="1", metric="lse_c",
                               value=float(np.mean(sync.confidence))) for clip, sync in by_second.items()])
    server = launch(campaign, AnnotationTask(gold_rate=0.0, practice=0, overlap=1, criteria=["lip_sync"]),
                    ServerSettings(port=free_port()))
    try:
        result = simulate(server.url, campaign, 1, 6, Preference(noise=0.0, marks=True))
    finally:
        server.close()
    assert (result.votes, result.errors) == (6, [])
    stored = {}
    for mark in marks(campaign).to_pylist():
        stored.setdefault(mark["showing_id"], []).append((mark["clip"], mark["start_s"], mark["end_s"]))
    expected = {}
    for vote in campaign.table("votes").to_pylist():
        winner, loser = (vote["clip_a"], vote["clip_b"])[:: 1 if vote["choice"] == "a" else -1]
        item = {"left": {"clip": loser}, "right": {"clip": winner}, "criteria": ["lip_sync"]}
        spans = [(loser, m["start_s"], m["end_s"]) for m in loser_marks(item, "right", by_second)]
        if spans:
            expected[vote["showing_id"]] = spans
    assert stored == expected  # each vote's marks on its loser only
    assert len(stored) == result.votes


def test_simulated_marks_need_a_sync_signal(tiny_world, tmp_path):
    campaign = world_campaign(tmp_path / "campaign", tiny_world)
    refused = annotate("serve", "--campaign", str(campaign.root), "--simulate", "1", "--simulate-marks",
                       "--simulate-score", "expression/mouth_audio", "--exit-after-simulation")
    assert refused.returncode == 2 and "--simulate-marks: scripted marks come from SyncNet" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_simulation_by_a_score_the_campaign_lacks_says_its_votes_are_random(tiny_world, tmp_path):
    campaign = world_campaign(tmp_path / "campaign", tiny_world)  # ingested, never scored
    served = annotate("serve", "--campaign", str(campaign.root), "--port", str(free_port()), "--simulate", "1",
                      "--simulate-votes", "1", "--simulate-score", "nope/x", "--exit-after-simulation")
    assert served.returncode == 0, served.stderr
    said = " ".join(served.stdout.split())
    assert "--simulate-score nope/x: no clip of" in said and "vote at random" in said


def test_a_server_nobody_can_log_in_to_says_so(tmp_path):
    from bench.records_campaign import make_campaign

    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 3})  # no accounts
    served = annotate("serve", "--campaign", str(campaign.root), "--port", str(free_port()),
                      "--exit-after-simulation")
    assert served.returncode == 0, served.stderr
    assert "no enabled accounts: nobody can log in" in " ".join(served.stdout.split())


def test_a_campaign_with_nothing_to_compare_is_one_line(tmp_path):
    from campaign.store import Campaign
    from bench.records_campaign import make_campaign

    single = make_campaign(tmp_path / "single", {"c1": [None], "c2": [None]})  # one clip per condition
    Campaign.open(tmp_path / "empty", create=True)
    for root, message in ((single.root, "no condition has 2 clips to compare"),
                          (tmp_path / "empty", "no clips to annotate")):
        refused = annotate("serve", "--campaign", str(root), "--port", str(free_port()), "--exit-after-simulation")
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr
