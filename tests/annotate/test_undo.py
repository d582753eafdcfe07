"""Undo of the last submission: an appended Retraction that the service, `pairs build`, `pairs stats` and the admin
console honour, while every acknowledged vote stays in the journal exactly once."""

import json

import pytest

import annotate.service as service_module
from annotate.admin_app import admin_report
from annotate.service import AnnotationService
from annotate.showing import Refused
from campaign.retractions import counted, retractions
from campaign.task import load_task, save_task, task_path
from data_schemas import AnnotationTask, Retraction, validate
from pairs.preferences.build import BuildOptions, build_pairs
from pairs.stats import campaign_stats

ALL_LEFT = {"lip_sync": "left", "expression": "left", "motion": "left", "overall": "left"}


def service(campaign, **task):
    return AnnotationService(campaign, AnnotationTask(**{"gold_rate": 0.0, "practice": 0, "overlap": 1, **task}))


def test_undo_appends_one_retraction_reopens_the_item_and_nothing_counts_it(small_campaign):
    svc = service(small_campaign)
    first = svc.next_showing("alice")
    svc.submit("alice", first.showing_id, "req-1", ALL_LEFT)
    moved_on = svc.next_showing("alice")
    again = svc.retract("alice", first.showing_id)
    assert again.item == first.item and again.left == first.left and again.showing_id != first.showing_id
    assert svc.next_showing("alice") == again  # the undone item is the open one now
    assert svc.progress("alice")[0] == 0
    assert moved_on.item.item_id not in svc.assigner.showing or "alice" not in svc.assigner.showing[moved_on.item.item_id]
    rows = retractions(small_campaign).to_pylist()
    assert [(r["showing_id"], r["annotator"], r["journal"]) for r in rows] == [(first.showing_id, "alice", "votes")]
    assert len(small_campaign.table("votes")) == 4  # append-only: the votes are still there, once
    assert len(counted(small_campaign, "votes")) == 0
    with pytest.raises(Refused) as refused:  # only once, and only the last one
        svc.retract("alice", first.showing_id)
    assert refused.value.status == 409
    svc.submit("alice", again.showing_id, "req-2", dict(ALL_LEFT, overall="tie"))
    assert svc.progress("alice")[0] == 1
    svc.close()
    # A restart replays the journal with the retraction: the item counts once, by its second answer.
    restarted = service(small_campaign)
    assert restarted.progress("alice")[0] == 1
    assert restarted.campaign_progress()[0] == 1
    report = admin_report(small_campaign, restarted)
    assert [r["showings"] for r in report["annotators"]] == [1]
    restarted.close()
    stats = campaign_stats(small_campaign, bootstrap=0)
    assert [a["showings"] for a in stats["annotators"]] == [1]
    pairs = build_pairs(small_campaign, BuildOptions(criterion="all", heldout=0.0)).to_pylist()
    assert sorted(p["criterion"] for p in pairs) == ["expression", "lip_sync", "motion"]  # overall: a tie, 2nd time
    left = first.item.clip_a if first.left == "a" else first.item.clip_b
    assert {p["chosen"] for p in pairs} == {left} and all(p["votes"] == 1 for p in pairs)


def test_undo_is_refused_for_others_and_after_sixty_seconds(small_campaign, monkeypatch):
    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    svc.submit("alice", showing.showing_id, "req-1", ALL_LEFT)
    with pytest.raises(Refused, match="only your last submission"):
        svc.retract("bob", showing.showing_id)
    clock = service_module.time.monotonic() + service_module.UNDO_SECONDS + 1
    monkeypatch.setattr(service_module.time, "monotonic", lambda: clock)
    with pytest.raises(Refused, match="too late"):
        svc.retract("alice", showing.showing_id)
    assert len(retractions(small_campaign)) == 0
    svc.close()


def test_a_retraction_is_a_validated_record():
    assert validate(Retraction(showing_id="s1", annotator="alice", journal="votes")) == []
    assert validate(Retraction(showing_id="s 1", annotator="alice", journal="clips")) == [
        "Retraction.showing_id: 's 1' does not match [A-Za-z0-9][A-Za-z0-9._-]{0,127}",
        "Retraction.journal: 'clips' is not one of votes, ratings"]


def test_a_task_file_without_definitions_or_examples_still_loads(small_campaign):
    save_task(small_campaign, AnnotationTask())
    data = json.loads(task_path(small_campaign).read_text())
    for field in ("definitions", "examples", "instructions"):
        del data[field]
    task_path(small_campaign).write_text(json.dumps(data))
    task = load_task(small_campaign)
    assert task.definitions["tie"] and task.definitions["both_bad"] and task.examples["lip_sync"]
