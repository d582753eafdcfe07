"""A journal rolls over into sealed segments with Parquet twins; readers see every record once, however it is split."""

import os

import pyarrow.parquet as pq
import pytest

from campaign.journal import (AppendFailed, JournalWriter, journal_parts, read_journal, sealed_segments,
                              segment_folder)
from campaign.store import Campaign
from data_schemas import UserError, Vote
from tests.campaign.test_journal import votes

BLOCK = 4  # votes() gives one showing's four criteria


def showings(table) -> list[str]:
    return table.column("showing_id").to_pylist()[::BLOCK]


def sealed_one_by_one(path, names: list[str]) -> None:
    """Append each showing's votes to the journal at `path`, each append sealing what came before."""
    with JournalWriter(path, Vote, segment_bytes=1) as journal:
        for showing in names:
            journal.append(votes(showing))


def test_the_live_file_rolls_over_into_sealed_segments_read_as_one_journal(tmp_path):
    path = tmp_path / "votes.jsonl"
    sealed_one_by_one(path, [f"s{i}" for i in range(7)])
    sealed = sealed_segments(path)
    assert [s.name for s in sealed] == [f"segment-{n:06d}.jsonl" for n in range(1, 7)]
    assert all(s.with_suffix(".parquet").is_file() and os.stat(s).st_mode & 0o777 == 0o600 for s in sealed)
    assert os.stat(segment_folder(path)).st_mode & 0o777 == 0o700
    assert showings(read_journal(path, Vote)) == [f"s{i}" for i in range(7)]
    # The twins hold what their JSON lines hold, and the live file only what came after the last seal.
    assert [showings(pq.read_table(s.with_suffix(".parquet"))) for s in sealed] == [[f"s{i}"] for i in range(6)]
    assert path.read_bytes().count(b"\n") == BLOCK


def test_sealed_segments_read_the_same_as_one_journal_file(tmp_path):
    rolled, single = tmp_path / "rolled" / "votes.jsonl", tmp_path / "single" / "votes.jsonl"
    with JournalWriter(rolled, Vote, segment_bytes=3_000) as a, JournalWriter(single, Vote) as b:  # ~2 showings
        for i in range(9):
            a.append(votes(f"s{i}", reason=None if i % 2 else "bored"))
            b.append(votes(f"s{i}", reason=None if i % 2 else "bored"))
    assert len(sealed_segments(rolled)) > 2 and not sealed_segments(single)
    assert read_journal(rolled, Vote).equals(read_journal(single, Vote))
    # The DuckDB view of a campaign's journal (twins scanned, live parsed) holds the same rows in any order.
    rows = []
    for name, journal in (("rolled", rolled), ("single", single)):
        campaign = Campaign.open(tmp_path / f"campaign-{name}", create=True)
        os.replace(journal.parent, campaign.root / "journal")
        rows.append(sorted(campaign.connect().execute("SELECT showing_id, criterion, skip_reason FROM votes").fetchall()))
    assert rows[0] == rows[1] and len(rows[0]) == 9 * BLOCK


def test_a_torn_tail_in_the_live_segment_is_ignored_then_cut(tmp_path):
    path = tmp_path / "votes.jsonl"
    sealed_one_by_one(path, [f"s{i}" for i in range(3)])
    with open(path, "ab") as f:
        f.write(b'{"showing_id": "torn", "annot')  # a crash mid-append
    assert showings(read_journal(path, Vote)) == ["s0", "s1", "s2"]
    with JournalWriter(path, Vote, segment_bytes=1) as journal:
        journal.append(votes("s3"))  # cuts the torn line, then seals s2 alone
    assert showings(read_journal(path, Vote)) == ["s0", "s1", "s2", "s3"]
    assert showings(pq.read_table(sealed_segments(path)[-1].with_suffix(".parquet"))) == ["s2"]
    assert b"torn" not in b"".join(p.read_bytes() for p in [*sealed_segments(path), path])


def test_a_roll_over_cut_short_after_the_seal_counts_once_and_is_finished_by_the_next_writer(tmp_path):
    path = tmp_path / "votes.jsonl"
    with JournalWriter(path, Vote, segment_bytes=1) as journal:
        journal.append(votes("s0"))
        journal.append(votes("s1"))  # seals s0
    # A crash between the seal (twin written, live file linked) and the new live file: the live file is also the
    # newest sealed segment.
    segment = segment_folder(path) / "segment-000002.jsonl"
    pq.write_table(read_journal(path, Vote).slice(BLOCK), segment.with_suffix(".parquet"))
    os.link(path, segment)
    assert showings(read_journal(path, Vote)) == ["s0", "s1"]  # not s1 twice
    with JournalWriter(path, Vote) as journal:
        assert os.stat(path).st_ino != os.stat(segment).st_ino  # finished on open: a new, empty live file
        assert path.read_bytes() == b""
        journal.append(votes("s2"))
    assert showings(read_journal(path, Vote)) == ["s0", "s1", "s2"]
    assert showings(pq.read_table(segment.with_suffix(".parquet"))) == ["s1"]


def test_a_failed_seal_leaves_the_append_to_the_live_file(tmp_path, monkeypatch):
    path = tmp_path / "votes.jsonl"
    with JournalWriter(path, Vote, segment_bytes=1) as journal:
        journal.append(votes("s0"))
        real_link = os.link

        def no_link(*args, **kwargs):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(os, "link", no_link)
        journal.append(votes("s1"))  # the seal failed before it was made: the vote is stored all the same
        assert not sealed_segments(path)
        monkeypatch.setattr(os, "link", real_link)
        journal.append(votes("s2"))  # the next append seals
    assert [s.name for s in sealed_segments(path)] == ["segment-000001.jsonl"]
    assert showings(pq.read_table(sealed_segments(path)[0].with_suffix(".parquet"))) == ["s0", "s1"]
    assert showings(read_journal(path, Vote)) == ["s0", "s1", "s2"]


def test_an_append_is_refused_while_the_live_file_is_sealed_but_not_replaced(tmp_path, monkeypatch):
    path = tmp_path / "votes.jsonl"
    with JournalWriter(path, Vote, segment_bytes=1) as journal:
        journal.append(votes("s0"))
        real_replace = os.replace

        def no_replace(src, dst, *args, **kwargs):
            if str(dst) == str(path):
                raise OSError(5, "Input/output error")
            return real_replace(src, dst, *args, **kwargs)
        monkeypatch.setattr(os, "replace", no_replace)
        with pytest.raises(AppendFailed, match="cannot seal"):
            journal.append(votes("s1"))  # the live file is the sealed segment now: nothing may be added to it
        monkeypatch.setattr(os, "replace", real_replace)
        journal.append(votes("s2"))
    assert showings(read_journal(path, Vote)) == ["s0", "s2"]


def test_a_sealed_segment_whose_twin_is_lost_is_read_from_its_json_lines_in_order(tmp_path):
    path = tmp_path / "votes.jsonl"
    sealed_one_by_one(path, [f"s{i}" for i in range(4)])
    sealed_segments(path)[1].with_suffix(".parquet").unlink()
    assert showings(read_journal(path, Vote)) == ["s0", "s1", "s2", "s3"]


def test_a_sealed_segment_gone_is_read_from_its_twin_and_one_gone_whole_is_refused_by_name(tmp_path):
    path = tmp_path / "votes.jsonl"
    sealed_one_by_one(path, [f"s{i}" for i in range(5)])
    middle = sealed_segments(path)[1]
    middle.unlink()  # its twin, written before the seal, holds the same records
    assert showings(read_journal(path, Vote)) == [f"s{i}" for i in range(5)]
    middle.with_suffix(".parquet").unlink()
    with pytest.raises(UserError, match=f"{middle}: missing, and its Parquet twin too: sealed segment 2 of 4 "):
        read_journal(path, Vote)
    with pytest.raises(UserError, match="sealed segment 2 of 4"):  # the scans' reader too
        journal_parts(path, Vote)
    middle.touch()  # what the message offers, to go on without those records
    assert showings(read_journal(path, Vote)) == ["s0", "s2", "s3", "s4"]


def test_the_newest_sealed_segment_gone_is_read_from_its_twin_which_later_seals_keep(tmp_path):
    path = tmp_path / "votes.jsonl"
    sealed_one_by_one(path, [f"s{i}" for i in range(5)])
    newest = sealed_segments(path)[-1]  # segment-000004.jsonl: s3; the live file holds s4
    newest.unlink()
    assert showings(read_journal(path, Vote)) == [f"s{i}" for i in range(5)]
    sealed_one_by_one(path, ["s5", "s6"])  # the next seal takes the number after the twin
    assert showings(read_journal(path, Vote)) == [f"s{i}" for i in range(7)]
    assert showings(pq.read_table(newest.with_suffix(".parquet"))) == ["s3"] and not newest.exists()
    assert [s.name for s in sealed_segments(path)][-2:] == ["segment-000005.jsonl", "segment-000006.jsonl"]
