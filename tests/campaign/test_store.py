import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from campaign.journal import JournalWriter
from campaign.store import Campaign
from tests.campaign.test_journal import votes
from data_schemas import Condition, Score, UserError, Vote, from_table

SHA = "c" * 64


def condition(cid="c1"):
    return Condition(condition_id=cid, reference_image=f"media/cc/{SHA}.png", audio=f"media/cc/{SHA}.wav")


def test_create_open_and_refuse_non_campaigns(tmp_path):
    with pytest.raises(UserError, match="not a campaign"):
        Campaign.open(tmp_path / "nope")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("x")
    with pytest.raises(UserError, match="not an empty folder"):
        Campaign.open(tmp_path / "busy", create=True)
    campaign = Campaign.open(tmp_path / "c", create=True)
    assert Campaign.open(tmp_path / "c").root == campaign.root
    for name in ("conditions", "clips", "scores", "annotators", "votes", "ratings"):
        assert campaign.table(name).num_rows == 0
    for garbage in ("garbage{", "[]"):
        (tmp_path / "busy" / "campaign.json").write_text(garbage)
        with pytest.raises(UserError, match="campaign.json: not a campaign marker"):
            Campaign.open(tmp_path / "busy")
    (tmp_path / "busy" / "campaign.json").write_text((tmp_path / "c" / "campaign.json").read_text())
    with pytest.raises(UserError, match="campaign.json without its tables/ folder"):
        Campaign.open(tmp_path / "busy")


def test_outputs_inside_the_campaign_folder_are_refused(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    for inside in (tmp_path / "c", tmp_path / "c" / "campaign.json", tmp_path / "c" / ".." / "c" / "pairs.parquet"):
        with pytest.raises(UserError, match="inside the campaign folder"):
            campaign.outside(inside, "--out")
    assert campaign.outside(tmp_path / "pairs.parquet", "--out") == tmp_path / "pairs.parquet"


def test_a_media_copy_the_disk_refuses_leaves_no_part_file(tmp_path, monkeypatch):
    import errno
    import shutil

    campaign = Campaign.open(tmp_path / "c", create=True)
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 1000)

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", full)
    with pytest.raises(OSError):
        campaign.add_media(source)
    assert not list((tmp_path / "c" / "media").rglob("*.part"))


def test_inserts_are_idempotent_and_scores_replace(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    assert campaign.add_conditions([condition("c1"), condition("c2")]) == 2
    assert campaign.add_conditions([condition("c1")]) == 0
    score = Score(clip=SHA, scorer="sync", scorer_version="1", metric="lse_c", value=1.0)
    campaign.add_scores([score])
    campaign.add_scores([Score(clip=SHA, scorer="sync", scorer_version="1", metric="lse_c", value=2.0)])
    values = campaign.connect().execute("SELECT value FROM scores").fetchall()
    assert values == [(2.0,)]
    assert sorted(c.condition_id for c in from_table(campaign.table("conditions"), Condition)) == ["c1", "c2"]


def test_media_is_content_addressed_and_paths_cannot_escape(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    (tmp_path / "a.mp4").write_bytes(b"same bytes")
    (tmp_path / "b.mp4").write_bytes(b"same bytes")
    first = campaign.add_media(tmp_path / "a.mp4")
    second = campaign.add_media(tmp_path / "b.mp4")
    assert first == second
    assert len(list((campaign.root / "media").rglob("*.mp4"))) == 1
    assert campaign.media_file(first).read_bytes() == b"same bytes"
    for bad in ("../campaign.json", "media/../../etc/passwd", f"media/aa/{SHA}.mp4/../../x", "/etc/passwd"):
        with pytest.raises(UserError, match="not a campaign media path"):
            campaign.media_file(bad)


def test_failed_write_transaction_changes_nothing(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    campaign.add_conditions([condition("c1")])
    with pytest.raises(RuntimeError):
        with campaign.write("conditions") as con:
            con.execute("DELETE FROM conditions")
            raise RuntimeError("crash in the middle")
    assert campaign.table("conditions").num_rows == 1


READER = """
import sys, time
from pathlib import Path
from campaign.store import Campaign
from tests.campaign.test_journal import votes
campaign = Campaign(Path(sys.argv[1]))
counts = set()
deadline = time.monotonic() + 1.5
while time.monotonic() < deadline:
    con = campaign.connect()
    counts.add(con.execute("SELECT count(*) FROM conditions").fetchall()[0][0])
    campaign.table("clips")
print(sorted(counts))
"""


def test_second_process_reads_while_first_holds_the_catalog_for_writing(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    campaign.add_conditions([condition("c1")])
    with campaign.write("conditions") as con:
        con.execute("INSERT INTO conditions SELECT * REPLACE ('c2' AS condition_id) FROM conditions")
        reader = subprocess.run([sys.executable, "-c", READER, str(campaign.root)], capture_output=True, text=True,
                                timeout=60, cwd=Path(__file__).parents[2])
    assert reader.returncode == 0, reader.stderr
    assert reader.stdout.strip() == "[1]"  # the published state; the open transaction is not visible
    assert campaign.table("conditions").num_rows == 2


def test_concurrent_writers_wait_for_each_other(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    script = ("import sys; from pathlib import Path; from campaign.store import Campaign; "
              "from data_schemas import Condition; c = Campaign(Path(sys.argv[1])); "
              "[c.add_conditions([Condition(condition_id=f'{sys.argv[2]}-{i}', reference_image='media/cc/' + 'c'*64 + "
              "'.png', audio='media/cc/' + 'c'*64 + '.wav')]) for i in range(15)]")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(campaign.root), name], cwd=Path(__file__).parents[2],
                              stderr=subprocess.PIPE, text=True) for name in ("x", "y")]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    assert campaign.table("conditions").num_rows == 30


def test_campaign_exposes_journals_as_tables(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    with JournalWriter(campaign.journal_path("votes"), Vote) as journal:
        journal.append(votes("s1")[-1:])
    con = campaign.connect()
    assert con.execute("SELECT showing_id, choice FROM votes").fetchall() == [("s1", "a")]


def test_campaign_files_are_private_whatever_the_umask(tmp_path):
    from annotate.users import add_annotator  # the users table holds password hashes
    from campaign.task import save_task
    from data_schemas import AnnotationTask

    previous = os.umask(0o022)
    try:
        campaign = Campaign.open(tmp_path / "c", create=True)
        source = tmp_path / "ref.png"
        source.write_bytes(b"png")
        campaign.add_conditions([condition()])
        campaign.add_media(source)
        add_annotator(campaign, "alice", "correct-horse")
        save_task(campaign, AnnotationTask())
        with JournalWriter(campaign.journal_path("votes"), Vote) as journal:
            journal.append(votes("s1"))
    finally:
        os.umask(previous)
    found = {p.relative_to(campaign.root).as_posix(): p.stat().st_mode & 0o777 for p in campaign.root.rglob("*")}
    assert {"catalog.duckdb", "campaign.json", "task.json", "tables/annotators.parquet", "journal/votes.jsonl",
            f"media/{sha256(b'png')[:2]}/{sha256(b'png')}.png"} <= set(found)
    expected = {name: 0o700 if (campaign.root / name).is_dir() else 0o600 for name in found}
    assert found == expected
    assert campaign.root.stat().st_mode & 0o777 == 0o700


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
