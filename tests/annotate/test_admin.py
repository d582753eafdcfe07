"""The admin tab's refresh: each vote journal read once, the votes download rewritten only when a journal changed."""

import pyarrow.parquet as pq

import campaign.retractions
from annotate.admin_app import VotesDownload, admin_refresh, admin_report
from tests.annotate.test_undo import ALL_LEFT, service


def test_a_refresh_reads_each_journal_once_and_rewrites_the_download_only_after_a_change(small_campaign, tmp_path,
                                                                                         monkeypatch):
    svc = service(small_campaign)
    first = svc.next_showing("alice")
    svc.submit("alice", first.showing_id, "req-1", ALL_LEFT)
    reads = []
    table, retractions = small_campaign.table, campaign.retractions.retractions
    monkeypatch.setattr(small_campaign, "table", lambda name: reads.append(name) or table(name))
    monkeypatch.setattr(campaign.retractions, "retractions", lambda c: reads.append("retractions") or retractions(c))
    download = VotesDownload(small_campaign, tmp_path)

    report, file, stamp = admin_refresh(small_campaign, svc, download, None)  # a page opens
    assert sorted(name for name in reads if name != "clips") == ["retractions", "votes"]  # once each
    assert report["progress"]["collected"] == 1 and [r["showings"] for r in report["annotators"]] == [1]
    written = file.stat()
    assert pq.read_table(file).column("retracted").to_pylist() == [False] * 4

    assert admin_refresh(small_campaign, svc, download, stamp)[1] is None  # its next tick: nothing new to send
    other = admin_refresh(small_campaign, svc, download, None)  # another page: the same file, not written again
    assert other[1] == file and other[2] == stamp
    assert (file.stat().st_mtime_ns, file.stat().st_ino) == (written.st_mtime_ns, written.st_ino)

    svc.retract("alice", first.showing_id)  # a journal changes: the file follows
    report, file, changed = admin_refresh(small_campaign, svc, download, stamp)
    assert changed != stamp and file is not None and file.stat().st_ino != written.st_ino
    assert pq.read_table(file).column("retracted").to_pylist() == [True] * 4
    assert report["progress"]["collected"] == 0 and report["annotators"] == []
    assert admin_report(small_campaign, svc) == report  # the API's report reads the same journals itself
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
