"""Segment marks: stored once with the vote they came with, refused as one clear line, dropped by an undo, carried
into pairs."""

import errno
import os

import pytest

from annotate.service import AnnotationService
from annotate.showing import Refused
from campaign.marks import counted_marks, marks
from data_schemas import AnnotationTask, SegmentMark
from data_schemas.marks import mark_problems, merged_spans
from pairs.preferences.build import BuildOptions, build_pairs
from tests.annotate.test_app import ANSWERS, PASSWORD, ab_server  # noqa: F401 - fixture

ALL_LEFT = {"lip_sync": "left", "expression": "left", "motion": "left", "overall": "left"}
SHA = "a" * 64


def service(campaign):
    return AnnotationService(campaign, AnnotationTask(gold_rate=0.0, practice=0, overlap=1))


def mark(clip="right", criterion="lip_sync", start=0.5, end=1.0):
    return {"clip": clip, "criterion": criterion, "start_s": start, "end_s": end}


def shown(showing, side):
    """The sha256 of the clip shown on `side`."""
    item = showing.item
    on_left = item.clip_a if showing.left == "a" else item.clip_b
    return on_left if side == "left" else ({item.clip_a, item.clip_b} - {on_left}).pop()


def test_marks_are_stored_once_with_their_vote_and_a_repeat_adds_none(small_campaign):
    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    sent = [mark(), mark("left", "overall", 0.0, 2.0)]
    svc.submit("alice", showing.showing_id, "req-1", ALL_LEFT, marks=sent)
    assert svc.submit("alice", showing.showing_id, "req-1", ALL_LEFT, marks=sent).repeated
    svc.close()
    rows = marks(small_campaign).to_pylist()
    assert [(r["clip"], r["criterion"], r["start_s"], r["end_s"]) for r in rows] == [
        (shown(showing, "right"), "lip_sync", 0.5, 1.0), (shown(showing, "left"), "overall", 0.0, 2.0)]
    assert {(r["showing_id"], r["request_id"], r["annotator"]) for r in rows} == {
        (showing.showing_id, "req-1", "alice")}
    assert len(counted_marks(small_campaign)) == 2
    assert len(service(small_campaign).marks.path.read_bytes().splitlines()) == 2  # a restart writes none again


def test_a_refused_vote_stores_no_marks(small_campaign):
    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    with pytest.raises(Refused) as refused:  # one criterion unanswered: nothing of the submission is stored
        svc.submit("alice", showing.showing_id, "req-1", {"lip_sync": "left"}, marks=[mark()])
    assert refused.value.status == 400
    with pytest.raises(Refused, match="marks come with answers: a skip stores none"):
        svc.submit("alice", showing.showing_id, "req-1", None, "cannot judge", marks=[mark()])
    svc.close()
    assert len(marks(small_campaign)) == 0 and len(small_campaign.table("votes")) == 0


def test_a_vote_the_disk_refuses_leaves_no_counted_marks_and_its_retry_stores_them_once(small_campaign, monkeypatch):
    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    votes = small_campaign.journal_path("votes")
    real_write = os.write

    def disk_full(fd, data):
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(votes.resolve()):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(Refused) as refused:
        svc.submit("alice", showing.showing_id, "req-1", ALL_LEFT, marks=[mark()])
    assert refused.value.status == 503
    assert len(counted_marks(small_campaign)) == 0  # on disk, but beside no vote
    monkeypatch.undo()
    svc.submit("alice", showing.showing_id, "req-1", ALL_LEFT, marks=[mark()])
    svc.close()
    assert len(marks(small_campaign)) == 1 and len(counted_marks(small_campaign)) == 1


@pytest.mark.parametrize("bad, message", [
    ([mark(start=1.0, end=0.5)], "mark 1: mark 1–0.5 s: the start must come before the end"),
    ([mark(end=2.5)], "mark 1: mark 0.5–2.5 s: ends after the clip (2 s)"),
    ([mark(), mark(criterion="charm")], "mark 2: mark criterion 'charm': not one the task asks"),
    ([mark(clip="middle")], "mark 1: clip 'middle' is not one of left, right"),
    ([mark(start="soon")], "mark 1: start_s 'soon' is not a number of seconds"),
    ([mark(start=-1.0)], "mark 1: SegmentMark.start_s: -1.0 is below the minimum 0.0"),
    ([{"clip": "left"}], "mark 1: give exactly clip, criterion, start_s, end_s"),
    ([mark(clip=["left"])], """mark 1: clip "['left']" is not one of left, right"""),
    ([mark(clip={"a": 1})], """mark 1: clip "{'a': 1}" is not one of left, right"""),
    ([mark(end=10**400)], "mark 1: end_s is far longer than any clip"),
    ({"clip": "left"}, "marks must be a list of {clip, criterion, start_s, end_s}, or null"),
])
def test_malformed_marks_are_a_400_with_one_line_and_store_nothing(small_campaign, bad, message):
    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    with pytest.raises(Refused) as refused:
        svc.submit("alice", showing.showing_id, "req-1", ALL_LEFT, marks=bad)
    svc.close()
    assert refused.value.status == 400 and str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)
    assert len(marks(small_campaign)) == 0 and len(small_campaign.table("votes")) == 0


def test_mark_problems_checks_the_clip_and_merging_joins_overlaps():
    record = SegmentMark(showing_id="s1", request_id="r1", annotator="alice", condition_id="c1", clip=SHA,
                         criterion="lip_sync", start_s=0.0, end_s=1.0)
    assert mark_problems(record, {SHA: 2.0}, ("lip_sync",)) == []
    assert mark_problems(record, {"b" * 64: 2.0}, ("lip_sync",)) == [f"mark on clip {SHA[:12]}…: not one of the "
                                                                     "clips shown"]
    assert merged_spans([[2, 3], [0, 1], [0.5, 1.5], [3, 4]]) == [[0.0, 1.5], [2.0, 4.0]]


def test_undo_drops_the_marks_from_pairs_and_the_new_answer_brings_its_own(small_campaign):
    svc = service(small_campaign)
    first = svc.next_showing("alice")
    svc.submit("alice", first.showing_id, "req-1", ALL_LEFT, marks=[mark("right", "lip_sync", 0.5, 1.0)])
    pairs = build_pairs(small_campaign, BuildOptions(criterion="lip_sync", heldout=0.0)).to_pylist()
    assert [(p["chosen_marks"], p["rejected_marks"]) for p in pairs] == [([], [[0.5, 1.0]])]
    again = svc.retract("alice", first.showing_id)
    assert len(counted_marks(small_campaign)) == 0
    svc.submit("alice", again.showing_id, "req-2", ALL_LEFT, marks=[mark("right", "lip_sync", 1.0, 1.5),
                                                                    mark("right", "lip_sync", 1.25, 2.0)])
    svc.close()
    pairs = build_pairs(small_campaign, BuildOptions(criterion="all", heldout=0.0)).to_pylist()
    by_criterion = {p["criterion"]: p for p in pairs}
    assert by_criterion["lip_sync"]["rejected"] == shown(first, "right")
    assert by_criterion["lip_sync"]["rejected_marks"] == [[1.0, 2.0]]  # the union of the second answer's marks
    assert all(p["rejected_marks"] == [] for c, p in by_criterion.items() if c != "lip_sync")


def test_the_json_api_answers_a_bad_mark_with_400_and_one_line_and_stores_a_good_one(ab_server):  # noqa: F811
    import httpx

    client = httpx.Client(base_url=ab_server.url, timeout=30)
    token = client.post("api/login", json={"username": "alice", "password": PASSWORD}).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    item = client.get("api/next_item").json()
    body = {"showing_id": item["showing_id"], "request_id": "j1", "answers": ANSWERS}
    bad = client.post("api/submit", json=dict(body, marks=[mark(start=0.9, end=0.2)]))
    assert bad.status_code == 400
    assert bad.json()["detail"] == "mark 1: mark 0.9–0.2 s: the start must come before the end"
    assert client.post("api/submit", json=dict(body, marks=[mark("left", "overall", 0.0, 0.5)])).status_code == 200
    rows = counted_marks(ab_server.service.campaign).to_pylist()
    assert [(r["clip"], r["criterion"], r["end_s"]) for r in rows] == [(item["left"]["clip"], "overall", 0.5)]
