import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from annotate.service import AnnotationService
from annotate.showing import Refused
from data_schemas import AnnotationTask
from bench.records_campaign import make_campaign, sha

ALL_LEFT = {"lip_sync": "left", "expression": "left", "motion": "left", "overall": "left"}


def service(campaign, **task):
    return AnnotationService(campaign, AnnotationTask(**{"gold_rate": 0.0, "practice": 0, **task}))


def test_vote_is_stored_per_criterion_with_its_showing(small_campaign):
    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    ack = svc.submit("alice", showing.showing_id, "req-1", dict(ALL_LEFT, expression="right", motion="tie",
                                                                overall="both_bad"))
    assert not ack.repeated and ack.done == 1
    votes = small_campaign.table("votes").to_pylist()
    assert [v["criterion"] for v in votes] == ["lip_sync", "expression", "motion", "overall"]
    right = "b" if showing.left == "a" else "a"
    assert [v["choice"] for v in votes] == [showing.left, right, "tie", "both_bad"]  # stored as clip slots
    assert {(v["clip_a"], v["clip_b"], v["left"], v["annotator"]) for v in votes} == {
        (showing.item.clip_a, showing.item.clip_b, showing.left, "alice")}
    assert all(v["latency_ms"] >= 0 and v["showing_id"] == showing.showing_id for v in votes)
    svc.close()


def test_repeated_submission_is_stored_once(small_campaign):
    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    first = svc.submit("alice", showing.showing_id, "req-1", ALL_LEFT)
    again = svc.submit("alice", showing.showing_id, "req-1", ALL_LEFT)
    assert again.repeated and again.done == first.done == 1
    assert small_campaign.table("votes").num_rows == 4
    svc.close()


def test_request_ids_are_each_annotators_own_and_an_answered_item_keeps_its_first_answers(small_campaign):
    svc = service(small_campaign)
    alices, bobs = svc.next_showing("alice"), svc.next_showing("bob")
    svc.submit("alice", alices.showing_id, "r1", ALL_LEFT)
    assert not svc.submit("bob", bobs.showing_id, "r1", ALL_LEFT).repeated  # bob's "r1" is not alice's
    with pytest.raises(Refused, match="you used it for another submission") as reused:
        svc.submit("alice", svc.next_showing("alice").showing_id, "r1", ALL_LEFT)
    assert reused.value.status == 409
    all_right = {c: "right" for c in ALL_LEFT}
    with pytest.raises(Refused, match="already answered under another request id") as again:
        svc.submit("alice", alices.showing_id, "r2", all_right)
    assert again.value.status == 409
    svc.close()
    stored = {(v["showing_id"], v["request_id"]) for v in small_campaign.table("votes").to_pylist()}
    assert stored == {(alices.showing_id, "r1"), (bobs.showing_id, "r1")}
    restarted = service(small_campaign)  # the same after a restart
    with pytest.raises(Refused, match="you used it for another submission"):
        restarted.submit("alice", restarted.next_showing("alice").showing_id, "r1", ALL_LEFT)
    restarted.close()


class PausingLock:
    """The service's lock, but the `pause_on`-th time `thread` takes it, it waits for `go` first."""

    def __init__(self, thread_name: str, pause_on: int) -> None:
        self.lock, self.thread_name, self.pause_on, self.taken = threading.Lock(), thread_name, pause_on, 0
        self.paused, self.go = threading.Event(), threading.Event()

    def acquire(self) -> None:
        if threading.current_thread().name == self.thread_name:
            self.taken += 1
            if self.taken == self.pause_on:
                self.paused.set()
                assert self.go.wait(10)
        self.lock.acquire()

    def release(self) -> None:
        self.lock.release()

    __enter__ = acquire

    def __exit__(self, *exc) -> None:
        self.release()


def test_a_retry_is_not_acknowledged_while_another_retry_of_it_is_still_being_written(small_campaign):
    """A's write fails; before A's cleanup, C (a retry) reserves the showing and writes; D, a retry meanwhile, must
    wait for C's write, not be told at once that the answer is stored."""
    from campaign.journal import AppendFailed

    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    # A takes the lock: 1 submit, 2 the failure's cut-back, 3 its cleanup — where it pauses.
    svc._lock = lock = PausingLock("A", pause_on=3)
    c_writing, c_go, appends = threading.Event(), threading.Event(), []
    real_append = svc.journal.append

    def append(records):
        appends.append(threading.current_thread().name)
        if threading.current_thread().name == "A":
            raise AppendFailed("disk full")
        c_writing.set()
        assert c_go.wait(10)
        real_append(records)

    svc.journal.append = append
    results = {}

    def submit(name):
        try:
            results[name] = svc.submit("alice", showing.showing_id, "r1", ALL_LEFT)
        except Refused as exc:
            results[name] = exc.status

    threads = {name: threading.Thread(target=submit, args=(name,), name=name) for name in "ACD"}
    threads["A"].start()
    assert lock.paused.wait(10)
    threads["C"].start()
    assert c_writing.wait(10)
    lock.go.set()
    threads["A"].join(10)
    threads["D"].start()
    threads["D"].join(0.5)
    assert results == {"A": 503} and threads["D"].is_alive()  # D waits for C's write
    c_go.set()
    for name in "CD":
        threads[name].join(10)
    assert not results["C"].repeated and results["D"].repeated
    svc.close()
    assert small_campaign.table("votes").num_rows == 4


def test_refusals(small_campaign):
    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    cases = [
        (("bob", showing.showing_id, "r1", ALL_LEFT), 403),
        (("alice", "nope", "r2", ALL_LEFT), 404),
        (("alice", showing.showing_id, "r3", {"lip_sync": "left"}), 400),
        (("alice", showing.showing_id, "r4", dict(ALL_LEFT, overall="a")), 400),  # slots are not answers
    ]
    for args, status in cases:
        with pytest.raises(Refused) as refused:
            svc.submit(*args)
        assert refused.value.status == status
    svc.submit("alice", showing.showing_id, "r5", ALL_LEFT)
    with pytest.raises(Refused) as refused:  # someone else's finished showing
        svc.submit("bob", showing.showing_id, "r5", ALL_LEFT)
    assert refused.value.status == 403
    other = svc.next_showing("alice")
    with pytest.raises(Refused) as refused:  # a request id is used once
        svc.submit("alice", other.showing_id, "r5", ALL_LEFT)
    assert refused.value.status == 409
    assert small_campaign.table("votes").num_rows == 4
    svc.close()


def drain(svc, annotator, limit=100):
    items = []
    for i in range(limit):
        showing = svc.next_showing(annotator)
        if showing is None:
            return items
        items.append(showing.item)
        svc.submit(annotator, showing.showing_id, f"{annotator}-{i}", ALL_LEFT)
    raise AssertionError("never ran out")


def test_overlap_distinct_annotators_and_no_repeats(small_campaign):
    svc = service(small_campaign, overlap=2)
    seen = {name: drain(svc, name) for name in ("alice", "bob", "carol")}
    for items in seen.values():
        ids = [i.item_id for i in items]
        assert len(ids) == len(set(ids))  # nobody sees an item twice
        assert not any(i.is_gold for i in items)
    counts = Counter(i.item_id for items in seen.values() for i in items)
    # 6 pairs in each generated condition + 3 degraded-vs-degraded world pairs (no known answer)
    assert len(counts) == 15 and set(counts.values()) == {2}
    assert svc.assigner.total_progress() == (30, 30)
    svc.close()


def test_items_are_spread_across_conditions(small_campaign):
    svc = service(small_campaign, overlap=1)
    conditions = [i.condition_id for i in drain(svc, "alice")]
    assert all(a != b for a, b in zip(conditions, conditions[1:]))
    svc.close()


def test_gold_items_are_mixed_in_at_the_gold_rate(small_campaign):
    svc = service(small_campaign, gold_rate=1.0)
    first = svc.next_showing("alice")
    in_sync = sha("world-1/0")  # the in-sync clip of the world condition wins every gold criterion
    assert first.item.is_gold
    assert first.item.gold["overall"] == ("a" if first.item.clip_a == in_sync else "b")
    svc.submit("alice", first.showing_id, "g1", ALL_LEFT)
    assert small_campaign.table("votes").column("is_gold").to_pylist() == [True] * 4
    svc.close()
    never = service(small_campaign, gold_rate=0.0)
    assert not any(i.is_gold for i in drain(never, "bob"))
    never.close()


def test_reload_resumes_the_open_showing_and_restart_resumes_progress(small_campaign):
    svc = service(small_campaign, overlap=1)
    showing = svc.next_showing("alice")
    assert svc.next_showing("alice").showing_id == showing.showing_id  # browser reload
    svc.submit("alice", showing.showing_id, "a-0", ALL_LEFT)
    skipped = svc.next_showing("alice")
    svc.submit("alice", skipped.showing_id, "a-1", None, skip_reason="video did not load")
    svc.close()
    restarted = service(small_campaign, overlap=1)
    assert restarted.progress("alice") == (2, 15)
    rest = drain(restarted, "alice")
    assert {i.item_id for i in rest}.isdisjoint({showing.item.item_id, skipped.item.item_id})
    assert skipped.item.item_id in {i.item_id for i in drain(restarted, "bob")}  # a skip frees the item
    with pytest.raises(Refused) as refused:  # an old showing survives a restart only as stored
        restarted.submit("alice", "0" * 24, "late", ALL_LEFT)
    assert refused.value.status == 404
    restarted.close()


def test_sixteen_threads_fifty_votes_each(tmp_path):
    campaign = make_campaign(tmp_path / "c", {"big": [None] * 11})  # 55 pairs
    svc = service(campaign, overlap=16)
    errors, acks = [], Counter()

    def annotate(name):
        try:
            for i in range(50):
                showing = svc.next_showing(name)
                for attempt in range(2):  # every vote is sent twice, like a double click
                    ack = svc.submit(name, showing.showing_id, f"{name}-{i}", ALL_LEFT)
                    acks[ack.repeated] += 1
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=annotate, args=(f"ann{t}",)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert acks == {False: 800, True: 800}
    votes = campaign.table("votes")
    assert votes.num_rows == 800 * 4
    assert len(set(votes.column("showing_id").to_pylist())) == 800
    svc.close()


KILLED_SERVER = """
import sys
from pathlib import Path
from annotate.service import AnnotationService
from campaign.store import Campaign
from data_schemas import AnnotationTask
svc = AnnotationService(Campaign(Path(sys.argv[1])), AnnotationTask(overlap=50, gold_rate=0.0, practice=0))
answers = {"lip_sync": "left", "expression": "right", "motion": "tie", "overall": "left"}
for i in range(10_000):
    name = f"ann{i % 7}"
    showing = svc.next_showing(name)
    if showing is None:
        break
    svc.submit(name, showing.showing_id, f"req-{i}", answers)
    print(showing.showing_id, flush=True)
"""


def test_sigkill_loses_no_acknowledged_vote(tmp_path):
    campaign = make_campaign(tmp_path / "c", {"big": [None] * 12})
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SERVER, str(campaign.root)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parents[2])
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) == 150:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    acknowledged += [line.strip() for line in proc.stdout if line.strip()]
    stored = Counter(campaign.table("votes").column("showing_id").to_pylist())
    assert all(stored[s] == 4 for s in acknowledged)
    assert set(stored.values()) == {4}  # no half-written showing is readable
    restarted = service(campaign, overlap=50)
    showing = restarted.next_showing("ann0")
    restarted.submit("ann0", showing.showing_id, "after-restart", ALL_LEFT)
    restarted.close()
    assert campaign.table("votes").num_rows == 4 * (len(stored) + 1)


def test_a_skip_reason_is_cleaned_capped_and_stored_once_per_showing(small_campaign):
    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    reason = "clip\x1b[31m froze\x00 at\n\t2 s " + "x" * 2000
    svc.submit("alice", showing.showing_id, "s1", None, skip_reason=reason)
    votes = small_campaign.table("votes").to_pylist()
    assert [v["choice"] for v in votes] == ["skip"] * 4
    stored = votes[0]["skip_reason"]
    assert stored.startswith("clip[31m froze at 2 s xxx") and len(stored) == 500
    assert [v["skip_reason"] for v in votes[1:]] == [None] * 3  # once per showing, not per criterion
    answered = svc.next_showing("alice")
    svc.submit("alice", answered.showing_id, "s2", ALL_LEFT, skip_reason="ignored: not a skip")
    assert all(v["skip_reason"] is None for v in small_campaign.table("votes").to_pylist()[4:])
    svc.close()


def test_refusals_quote_at_most_a_short_prefix_of_user_input(small_campaign):
    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    huge = "y" * 100_000
    for args in (("alice", huge, "r1", ALL_LEFT), ("alice", showing.showing_id, huge, ALL_LEFT),
                 ("alice", showing.showing_id, "r1", dict(ALL_LEFT, overall=huge)),
                 ("alice", showing.showing_id, "r1", {**ALL_LEFT, huge: "left"})):
        with pytest.raises(Refused) as refused:
            svc.submit(*args)
        assert refused.value.status in (400, 404) and len(str(refused.value)) < 200
    svc.close()


def test_rating_mode_takes_scores_one_to_five(small_campaign):
    svc = service(small_campaign, mode="rating", criteria=["lip_sync", "overall"])
    showing = svc.next_showing("alice")
    for bad in (0, 6, 4.5, True, "five", None):
        with pytest.raises(Refused, match="not a score from 1 to 5"):
            svc.submit("alice", showing.showing_id, "r1", {"lip_sync": bad, "overall": 3})
    svc.submit("alice", showing.showing_id, "r1", {"lip_sync": "5", "overall": 3})
    ratings = small_campaign.table("ratings").to_pylist()
    assert [(r["criterion"], r["score"], r["clip"]) for r in ratings] == [
        ("lip_sync", 5, showing.item.clip_a), ("overall", 3, showing.item.clip_a)]
    assert small_campaign.table("votes").num_rows == 0
    skipped = svc.next_showing("alice")
    svc.submit("alice", skipped.showing_id, "r2", None)  # a skip stores null scores
    collected = svc.campaign_progress()
    svc.close()
    restarted = service(small_campaign, mode="rating", criteria=["lip_sync", "overall"])  # replays the ratings
    assert restarted.progress("alice")[0] == 2 and restarted.campaign_progress() == collected  # the skip not counted
    assert restarted.submit("alice", showing.showing_id, "r1", {"lip_sync": 5, "overall": 3}).repeated
    assert restarted.next_showing("alice").item.item_id not in {showing.item.item_id, skipped.item.item_id}
    restarted.close()


def test_a_failed_journal_write_stores_nothing_and_the_retry_stores_once(small_campaign, monkeypatch):
    import errno

    svc = service(small_campaign)
    first = svc.next_showing("alice")
    svc.submit("alice", first.showing_id, "ok-1", ALL_LEFT)
    journal = small_campaign.journal_path("votes")
    before = journal.read_bytes()
    showing = svc.next_showing("alice")
    real_write = os.write

    def disk_full(fd, data):  # half the block reaches the disk, then the disk is full
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(journal.resolve()):
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(Refused) as refused:
        svc.submit("alice", showing.showing_id, "try-1", ALL_LEFT)
    assert refused.value.status == 503 and "No space left on device" in str(refused.value)
    assert journal.read_bytes() == before  # no partial line, nothing of the refused vote
    monkeypatch.undo()  # space is back
    ack = svc.submit("alice", showing.showing_id, "try-2", ALL_LEFT)
    assert not ack.repeated and ack.done == 2
    assert svc.submit("alice", showing.showing_id, "try-2", ALL_LEFT).repeated
    svc.close()
    stored = Counter(v["showing_id"] for v in small_campaign.table("votes").to_pylist())
    assert stored == {first.showing_id: 4, showing.showing_id: 4}
    assert journal.read_bytes().endswith(b"\n")


def test_a_task_that_cannot_be_served_is_refused(small_campaign):
    from data_schemas import UserError

    with pytest.raises(UserError, match="criterion 'identity' has no definition"):
        service(small_campaign, criteria=["identity"])


def test_the_pages_clip_facts_come_from_the_services_own_read_of_the_clips(small_campaign, monkeypatch):
    from annotate.annotation_app import clip_facts

    svc = service(small_campaign)
    reads = []
    table = small_campaign.table
    monkeypatch.setattr(small_campaign, "table", lambda name: reads.append(name) or table(name))
    facts = clip_facts(svc)
    assert reads == ["scores"]  # the clips table is not read a second time
    assert facts.of(sha("c1/0")) == {"fps": 25.0, "duration": 2.0, "width": 64, "height": 64, "mouth": None}
    assert clip_facts(svc) is facts and reads == ["scores"]  # once per service
    svc.close()


def test_a_crash_mid_write_stores_none_of_the_showing_and_a_restart_shows_it_again(small_campaign, monkeypatch):
    from tests.campaign.test_journal import crashing_after_lines

    svc = service(small_campaign)
    showing = svc.next_showing("alice")
    journal = small_campaign.journal_path("votes")
    monkeypatch.setattr(os, "write", crashing_after_lines(journal, 2, os.write))
    with pytest.raises(KeyboardInterrupt):  # two of the four criteria reach the disk, then the power goes
        svc.submit("alice", showing.showing_id, "r1", ALL_LEFT)
    monkeypatch.undo()
    svc.close()
    restarted = service(small_campaign)
    assert restarted.progress("alice")[0] == 0  # never acknowledged: not answered
    again = restarted.next_showing("alice")
    assert again.showing_id == showing.showing_id  # her open item, shown again
    assert not restarted.submit("alice", again.showing_id, "r1", ALL_LEFT).repeated
    restarted.close()
    stored = Counter((v["showing_id"], v["criterion"]) for v in small_campaign.table("votes").to_pylist())
    assert stored == {(showing.showing_id, c): 1 for c in ALL_LEFT}
