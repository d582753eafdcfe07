"""The journal stores an append completely or not at all, even when the disk fills up."""

import errno
import json
import os
from datetime import datetime, timezone

import pytest

from campaign.journal import AppendFailed, JournalMoved, JournalWriter, read_journal
from data_schemas import UserError, Vote
from tests.campaign.tmpfs import small_tmpfs

SHA_A, SHA_B = "a" * 64, "b" * 64
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def votes(showing: str, reason: str | None = None) -> list[Vote]:
    return [Vote(showing_id=showing, request_id=f"r-{showing}", annotator="alice", condition_id="c1", clip_a=SHA_A,
                 clip_b=SHA_B, left="a", criterion=c, choice="a", skip_reason=reason, created_at=WHEN)
            for c in ("lip_sync", "expression", "motion", "overall")]


def failing_on(path, name: str, fail_times: int, real):
    """os.write / os.fsync that fails `fail_times` times for `path` (after writing half, for os.write)."""
    left = [fail_times]

    def call(fd, *args):
        if left[0] and os.path.realpath(f"/proc/self/fd/{fd}") == str(path.resolve()):
            left[0] -= 1
            if name == "write":
                real(fd, bytes(args[0][: len(args[0]) // 2]))
            raise OSError(errno.EIO if name == "fsync" else errno.ENOSPC, f"injected {name} failure")
        return real(fd, *args)
    return call


def test_a_failed_fsync_is_cut_off_and_the_next_append_lands_once(tmp_path, monkeypatch):
    path = tmp_path / "votes.jsonl"
    with JournalWriter(path, Vote) as journal:
        journal.append(votes("s1"))
        before = path.read_bytes()
        monkeypatch.setattr(os, "fsync", failing_on(path, "fsync", 1, os.fsync))
        with pytest.raises(AppendFailed, match="injected fsync failure"):
            journal.append(votes("s2"))
        assert path.read_bytes() == before
        journal.append(votes("s3"))
    assert read_journal(path, Vote).column("showing_id").to_pylist() == ["s1"] * 4 + ["s3"] * 4


def test_a_journal_that_cannot_be_cut_back_yet_is_repaired_before_the_next_append(tmp_path, monkeypatch):
    path = tmp_path / "votes.jsonl"
    journal = JournalWriter(path, Vote)
    journal.append(votes("s1"))
    before = path.read_bytes()
    real_truncate = os.ftruncate
    monkeypatch.setattr(os, "write", failing_on(path, "write", 1, os.write))
    monkeypatch.setattr(os, "ftruncate", failing_on(path, "ftruncate", 1, real_truncate))
    with pytest.raises(AppendFailed):
        journal.append(votes("s2"))
    assert path.read_bytes().startswith(before) and len(path.read_bytes()) > len(before)  # the half block is left
    journal.append(votes("s3"))  # cuts the half block off first
    journal.close()
    assert read_journal(path, Vote).column("showing_id").to_pylist() == ["s1"] * 4 + ["s3"] * 4


def test_journal_ignores_and_repairs_a_torn_last_line(tmp_path):
    path = tmp_path / "votes.jsonl"
    with JournalWriter(path, Vote) as journal:
        journal.append(votes("s1") + votes("s2"))
    with open(path, "ab") as f:
        f.write(b'{"showing_id": "s3", "requ')  # a crash mid-write
    assert read_journal(path, Vote).column("showing_id").to_pylist() == ["s1"] * 4 + ["s2"] * 4
    with JournalWriter(path, Vote) as journal:
        journal.append(votes("s4"))
    assert read_journal(path, Vote).column("showing_id").to_pylist() == ["s1"] * 4 + ["s2"] * 4 + ["s4"] * 4


def test_a_damaged_journal_names_the_line_as_an_editor_counts_it(tmp_path):
    path = tmp_path / "votes.jsonl"
    with JournalWriter(path, Vote) as journal:
        journal.append(votes("s1"))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2] + [b"garbage\n"] + lines[2:]))
    with pytest.raises(UserError, match=r"votes.jsonl: journal is damaged \(line 3 is not JSON\)"):
        read_journal(path, Vote)


def test_journal_allows_one_writer(tmp_path):
    with JournalWriter(tmp_path / "votes.jsonl", Vote):
        with pytest.raises(UserError, match="another process is writing this journal"):
            JournalWriter(tmp_path / "votes.jsonl", Vote)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 8 KiB tmpfs (we run as root in CI); yields (folder, grow) where grow() gives it room again."""
    with small_tmpfs(tmp_path / "disk", "8k") as disk:
        yield disk.folder, lambda: disk.resize("1m")


def test_a_really_full_disk_keeps_exactly_the_acknowledged_appends(tiny_disk):
    folder, grow = tiny_disk
    path = folder / "votes.jsonl"
    acknowledged, refused = [], 0
    with JournalWriter(path, Vote) as journal:
        for n in range(100):
            try:
                journal.append(votes(f"s{n}", reason="x" * 200))
                acknowledged.append(f"s{n}")
            except AppendFailed as exc:
                assert "No space left on device" in str(exc)
                refused += 1
                if refused == 3:  # refused again and again while full: still nothing half-written
                    break
        assert acknowledged and refused == 3
        assert path.read_bytes().endswith(b"\n")
        grow()
        journal.append(votes("after"))
    stored = read_journal(path, Vote).column("showing_id").to_pylist()
    assert stored == [s for s in acknowledged + ["after"] for _ in range(4)]


def test_a_journal_moved_away_or_replaced_refuses_appends_until_it_is_back(tmp_path):
    path = tmp_path / "journal" / "votes.jsonl"
    moved = tmp_path / "journal" / "votes.moved"
    with JournalWriter(path, Vote) as journal:
        journal.append(votes("s1"))
        before = path.read_bytes()
        path.rename(moved)
        with pytest.raises(JournalMoved, match="journal/votes.jsonl was moved away or deleted while the server runs; "
                                               "nothing is stored until the original file is back"):
            journal.append(votes("s2"))
        path.mkdir()
        with pytest.raises(JournalMoved, match="replaced by a folder"):
            journal.append(votes("s2"))
        with pytest.raises(UserError, match=f"{path}: is a folder, not a journal file; move it out of the way"):
            read_journal(path, Vote)
        path.rmdir()
        path.write_bytes(b"")
        with pytest.raises(JournalMoved, match="replaced by another file"):
            journal.append(votes("s2"))
        assert moved.read_bytes() == before and path.read_bytes() == b""  # nothing went to either file
        moved.replace(path)  # the original is back: appends go on
        journal.append(votes("s3"))
    assert read_journal(path, Vote).column("showing_id").to_pylist() == ["s1"] * 4 + ["s3"] * 4


def test_a_journal_is_private_and_a_folder_in_its_place_is_one_line(tmp_path):
    old = tmp_path / "old" / "votes.jsonl"
    old.parent.mkdir()
    old.write_bytes(b"")
    old.chmod(0o644)  # made before campaign files were private
    previous = os.umask(0o022)
    try:
        for path in (tmp_path / "new" / "votes.jsonl", old):
            JournalWriter(path, Vote).close()
            assert path.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    finally:
        os.umask(previous)
    folder = tmp_path / "folder" / "votes.jsonl"
    folder.mkdir(parents=True)
    with pytest.raises(UserError, match=f"^{folder}: is a folder, not a journal file"):
        JournalWriter(folder, Vote)


def crashing_after_lines(path, lines: int, real):
    """os.write that puts the first `lines` lines of a block for `path` on disk, then the process 'dies' (a
    BaseException no writer catches: nothing is cut back, as after a power cut)."""

    def call(fd, data):
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(path.resolve()):
            block = bytes(data)
            real(fd, b"".join(block.splitlines(keepends=True)[:lines]))
            raise KeyboardInterrupt("crash mid-append")
        return real(fd, data)
    return call


@pytest.mark.parametrize("acknowledged", [[], ["s1"]])
def test_complete_lines_of_an_append_cut_short_are_neither_read_nor_kept(tmp_path, monkeypatch, acknowledged):
    path = tmp_path / "votes.jsonl"
    journal = JournalWriter(path, Vote)
    for showing in acknowledged:
        journal.append(votes(showing))
    before = path.read_bytes()
    monkeypatch.setattr(os, "write", crashing_after_lines(path, 3, os.write))
    with pytest.raises(KeyboardInterrupt):
        journal.append(votes("s2"))  # three whole lines of four reach the disk
    monkeypatch.undo()
    assert path.read_bytes().count(b'"s2"') == 3  # complete lines of the cut append
    assert read_journal(path, Vote).column("showing_id").to_pylist() == [s for s in acknowledged for _ in range(4)]
    journal.close()
    partial = path.read_bytes()
    with JournalWriter(path, Vote) as reopened:  # the next writer cuts the partial append off, and keeps it aside
        assert path.read_bytes() == before
        (aside,) = path.parent.glob("votes.jsonl.cut-*")
        assert path.read_bytes() + aside.read_bytes() == partial and os.stat(aside).st_mode & 0o777 == 0o600
        reopened.append(votes("s3"))
    assert read_journal(path, Vote).column("showing_id").to_pylist() == [s for s in acknowledged + ["s3"]
                                                                          for _ in range(4)]
    assert all(json.loads(line) for line in path.read_text().splitlines())  # still one JSON record a line


def test_a_journal_written_before_appends_were_marked_is_read_whole_and_marked_from_then_on(tmp_path, monkeypatch):
    from data_schemas import to_rows

    path = tmp_path / "votes.jsonl"
    path.write_bytes(b"".join(json.dumps(row).encode() + b"\n" for row in to_rows(votes("old"))))
    assert read_journal(path, Vote).column("showing_id").to_pylist() == ["old"] * 4
    journal = JournalWriter(path, Vote)
    monkeypatch.setattr(os, "write", crashing_after_lines(path, 3, os.write))
    with pytest.raises(KeyboardInterrupt):
        journal.append(votes("s1"))  # the first marked append, cut short: the old records stay whole
    monkeypatch.undo()
    assert read_journal(path, Vote).column("showing_id").to_pylist() == ["old"] * 4  # readers skip it already
    journal.close()
    with JournalWriter(path, Vote) as reopened:
        reopened.append(votes("s2"))
    assert read_journal(path, Vote).column("showing_id").to_pylist() == ["old"] * 4 + ["s2"] * 4


def test_lines_after_the_last_append_end_are_kept_aside_not_lost(tmp_path, caplog):
    from data_schemas import to_rows

    path = tmp_path / "votes.jsonl"
    with JournalWriter(path, Vote) as journal:
        journal.append(votes("s1"))
    unmarked = b"".join(json.dumps(row).encode() + b"\n" for row in to_rows(votes("older")))  # an older writer's
    with open(path, "ab") as f:
        f.write(unmarked)
    JournalWriter(path, Vote).close()
    (aside,) = path.parent.glob("votes.jsonl.cut-*")
    assert aside.read_bytes() == unmarked and "kept in" in caplog.text and str(aside) in caplog.text
    assert read_journal(path, Vote).column("showing_id").to_pylist() == ["s1"] * 4


def test_a_journal_is_read_whole_where_one_read_returns_less_than_asked(tmp_path, monkeypatch):
    path = tmp_path / "votes.jsonl"
    with JournalWriter(path, Vote) as journal:
        journal.append(votes("s1"))
        journal.append(votes("s2"))
    before = path.read_bytes()
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, offset: real_pread(fd, min(n, 7), offset))  # as past 2 GiB
    with JournalWriter(path, Vote, segment_bytes=1) as journal:  # the open finds the last end; the seal reads all
        journal.append(votes("s3"))
    monkeypatch.undo()
    assert not list(tmp_path.glob("votes.jsonl.cut-*"))
    assert (tmp_path / "votes" / "segment-000001.jsonl").read_bytes() == before
    assert read_journal(path, Vote).column("showing_id").to_pylist() == [s for s in ("s1", "s2", "s3")
                                                                          for _ in range(4)]


def test_a_full_disk_while_setting_a_partial_append_aside_refuses_the_open_and_releases_the_journal(tiny_disk):
    folder, grow = tiny_disk
    path = folder / "votes.jsonl"
    with JournalWriter(path, Vote) as journal:
        journal.append(votes("s1"))
    with open(path, "ab") as f:
        f.write(b'{"showing_id": "s2"}\n' * 20)  # whole lines of an append that never ended
    with open(folder / "filler", "wb", buffering=0) as f:  # nothing left for the bytes to be set aside in
        with pytest.raises(OSError):
            while True:
                f.write(b"x" * 512)
    before = path.read_bytes()
    with pytest.raises(UserError, match="cannot set aside what a crash left .* free space"):
        JournalWriter(path, Vote)
    assert path.read_bytes() == before and not list(folder.glob("votes.jsonl.cut-*"))
    grow()
    with JournalWriter(path, Vote) as journal:  # the failed open let go of the journal
        journal.append(votes("s3"))
    (aside,) = folder.glob("votes.jsonl.cut-*")
    assert aside.read_bytes() == b'{"showing_id": "s2"}\n' * 20
    assert read_journal(path, Vote).column("showing_id").to_pylist() == ["s1"] * 4 + ["s3"] * 4
