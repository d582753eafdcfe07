"""The admin tab's report: shared by pages and the API, read again only after an answer or an undo, paced for a
page's timed refresh."""

import annotate.admin_app
import campaign.retractions
from annotate.admin_app import PACE, SharedReport, admin_report
from tests.annotate.test_undo import ALL_LEFT, service


def test_the_report_is_read_again_only_after_an_answer_or_undo_and_a_timed_refresh_waits_its_pace(
        small_campaign, monkeypatch):
    svc = service(small_campaign)
    now, computed = [0.0], []

    def computing(campaign, service):  # each report "takes" half a second: a timed refresh waits PACE × 0.5 s
        now[0] += 0.5
        computed.append(1)
        return admin_report(campaign, service)
    monkeypatch.setattr(annotate.admin_app, "admin_report", computing)
    reports = SharedReport(small_campaign, svc, lambda: now[0])
    assert reports.get()["progress"]["collected"] == 0 and len(computed) == 1
    assert reports.get(timed=True) is reports.get() and len(computed) == 1  # nothing stored since: no read

    first = svc.next_showing("alice")
    svc.submit("alice", first.showing_id, "req-1", ALL_LEFT)
    assert reports.get(timed=True)["progress"]["collected"] == 0  # within its pace, a page's tick waits
    fresh = reports.get()  # a page opening (or the API) does not
    assert fresh["progress"]["collected"] == 1 and [r["showings"] for r in fresh["annotators"]] == [1]
    assert len(computed) == 2 and fresh["compute_seconds"] == 0.5
    reads = []
    table, retractions = small_campaign.table, campaign.retractions.retractions
    monkeypatch.setattr(small_campaign, "table", lambda name: reads.append(name) or table(name))
    monkeypatch.setattr(campaign.retractions, "retractions", lambda c: reads.append("retractions") or retractions(c))
    made = {k: v for k, v in fresh.items() if k not in ("as_of", "compute_seconds")}
    assert made == admin_report(small_campaign, svc)
    assert sorted(name for name in reads if name != "clips") == ["retractions", "votes"]  # each journal once

    svc.retract("alice", first.showing_id)
    assert reports.get(timed=True) is fresh
    now[0] += PACE * 0.5  # the pace has passed: the tick reads the undo
    undone = reports.get(timed=True)
    assert undone["progress"]["collected"] == 0 and undone["annotators"] == [] and len(computed) == 3
    svc.close()


def test_completion_paces_answered_showings_and_leaves_skips_out():
    from datetime import datetime, timedelta, timezone

    import pyarrow as pa

    from annotate.admin_app import completion

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [("s1", "a", 0), ("s1", "b", 0), ("s2", "tie", 1), ("s3", "skip", 9), ("s4", "a", 2), ("s4", "skip", 2)]
    votes = pa.table({"showing_id": [r[0] for r in rows], "choice": [r[1] for r in rows],
                      "created_at": pa.array([start + timedelta(hours=r[2]) for r in rows], pa.timestamp("us", "UTC"))})
    # 3 answered showings over 2 hours: 1 per hour; 6 answers left → 6 hours.
    assert completion(votes, 4, 10) == {"collected": 4, "needed": 10, "per_hour": 1.0, "time_left": "6:00:00"}
    assert completion(votes.slice(0, 2), 4, 4)["time_left"] == "done"
    assert completion(votes.slice(0, 2), 1, 4) == {"collected": 1, "needed": 4, "per_hour": None, "time_left": None}
