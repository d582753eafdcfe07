"""Append-only JSON-lines journal: each append is written and fsynced before it returns, or not at all.

Votes and ratings land here, not in the DuckDB catalog, so the annotation server never holds the
catalog's write lock and every acknowledged vote is on disk. An append that fails (a full disk, an I/O
error) is cut off again before the error is reported, so a vote is on disk exactly when it was
acknowledged. One append (a showing's answers, one line per criterion) is one unit, marked at both ends:
its first line begins with a space (APPEND_START) and its last line ends with a space before the newline
(APPEND_END). JSON allows whitespace around a value, so every line is still one JSON record and readers see
the same records. A crash mid-append can leave a torn last line, or complete lines of an append without its
end; that append was never acknowledged: readers ignore everything after the last APPEND_END and the next
writer cuts it off. A journal written before appends were marked has neither mark: its complete lines are
its records, as before, up to the first line that begins a marked append (one cut short, when none ended).

A journal moved away or replaced (by another file or a folder) while its writer is open is noticed before
the next append: the append is refused (JournalMoved) and nothing goes to the moved file, until the
journal is back where it was. Journal files are created 0600 in a 0700 folder: they name the annotators.

A journal rolls over into segments so that readers of millions of records parse little JSON. The live file
(`journal/votes.jsonl`) takes the appends; once it holds `segment_bytes`, the writer seals it before the
next append: it writes the segment's Parquet twin (`journal/votes/segment-000001.parquet`, whole or not
at all), links the live file as `journal/votes/segment-000001.jsonl` (the sealing itself), and renames a
new, already locked, empty live file over the old name. Sealed segments never change again. Readers read
the sealed segments' twins and parse only the live file; a live file that is still linked as the newest
sealed segment (a writer between linking and renaming, or one that crashed there) counts as empty, and a
reader that sees the sealed segments change while it reads reads again. A journal that never rolled over
is one live file, as journals always were.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import secrets
import stat
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from campaign.files import fsync_folder, fsync_replace, private_folder
from data_schemas import UserError, arrow_schema, conform, to_rows

APPEND_START = b" "  # how every append's first line begins (json.dumps never begins a line with a space)
APPEND_END = b" \n"  # how every append's last line ends; nowhere else (JSON escapes a newline in a string)
SEGMENT_BYTES = 16 << 20  # a live file this long is sealed before the next append (~40k votes; parsed in < 0.5 s)


class AppendFailed(Exception):
    """An append that stored nothing: the journal is back at its last acknowledged length."""


class JournalMoved(AppendFailed):
    """An append refused because the journal file is no longer at its path (renamed, deleted, replaced)."""


class JournalWriter:
    """The one open append handle of a journal file; holds an exclusive lock on it while open.

    Writes go straight to the file descriptor: no buffer can keep the bytes of a failed append and
    write them later, after the vote was refused. Before each append the file at `path` must still be
    the one that is open (same device and inode), else the append is refused (JournalMoved).
    """

    def __init__(self, path: Path, record_type: type, segment_bytes: int = SEGMENT_BYTES) -> None:
        if segment_bytes < 1:
            raise ValueError("segment_bytes must be positive")
        self.path = Path(path)
        self.record_type = record_type
        self.segment_bytes = segment_bytes
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_file():
            raise UserError(_not_a_file(self.path))
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise UserError(f"{self.path}: cannot open the journal ({exc.strerror}); check the campaign "
                            "folder's permissions and free space") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise UserError(f"{self.path}: another process is writing this journal; stop it first") from None
        os.fchmod(self._fd, 0o600)  # also a journal made before campaign files were private
        opened = os.fstat(self._fd)
        self._identity = (opened.st_dev, opened.st_ino)
        try:
            self._acknowledged = _cut_partial_append(self._fd, self.path)  # bytes known complete and durable
        except OSError as exc:
            os.close(self._fd)  # and its lock: a retry once there is room must not find the journal taken
            raise UserError(f"{self.path}: cannot set aside what a crash left after its last complete append "
                            f"({exc.strerror or exc}); free space in the campaign folder or make it writable, then "
                            "start again") from None
        self._damaged = False  # a failed append could not be cut off yet
        self._lock = threading.Lock()
        if self._is_sealed():  # a writer crashed mid roll-over: appends must not reach the sealed segment
            try:
                self._roll_over()
            except OSError as exc:
                os.close(self._fd)
                raise UserError(f"{self.path}: cannot finish sealing the journal ({exc.strerror or exc}); check the "
                                "campaign folder's permissions and free space") from None

    def append(self, records: Iterable[Any]) -> None:
        """Write the records as one block and make it durable; on any error store none of it (AppendFailed)."""
        lines = [json.dumps(row, sort_keys=True, ensure_ascii=False).encode() for row in to_rows(records)]
        block = APPEND_START + b"\n".join(lines) + APPEND_END
        with self._lock:
            self._require_in_place()
            if not lines:
                return  # nothing to store: no end mark alone
            if self._acknowledged >= self.segment_bytes:
                self._roll_over_before_append()
            try:
                if self._damaged:
                    self._cut_back()
                _write_all(self._fd, block)
                os.fsync(self._fd)
            except OSError as exc:
                self._damaged = True
                try:
                    self._cut_back()
                except OSError:
                    pass  # still damaged: the next append or close cuts back before anything else
                raise AppendFailed(f"{self.path.name}: {exc.strerror or exc}") from None
            self._acknowledged += len(block)

    def _require_in_place(self) -> None:
        """JournalMoved unless the file at `path` is the open one: never append to a journal moved away."""
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            problem = "was moved away or deleted"
        except OSError as exc:
            problem = f"cannot be checked ({exc.strerror})"
        else:
            if (found.st_dev, found.st_ino) == self._identity:
                return
            problem = ("was replaced by another file" if stat.S_ISREG(found.st_mode) else
                       "was replaced by a folder" if stat.S_ISDIR(found.st_mode) else "was replaced")
        # Named relative to the campaign: the message reaches annotators, who need not learn where it lives.
        name = f"{self.path.parent.name}/{self.path.name}"
        raise JournalMoved(f"{name} {problem} while the server runs; nothing is stored until the original file "
                           "is back at that path (or the server is restarted to use what is there now)")

    def _roll_over_before_append(self) -> None:
        """Seal the full live file; if that fails the append still goes to the live file, unless it is already
        linked as a sealed segment (then nothing may be added to it: AppendFailed)."""
        try:
            self._roll_over()
        except OSError as exc:
            if self._is_sealed():
                raise AppendFailed(f"{self.path.name}: cannot seal the journal segment "
                                   f"({exc.strerror or exc})") from None

    def _is_sealed(self) -> bool:
        """Whether the open live file is also the newest sealed segment (linked, not yet replaced)."""
        sealed = sealed_segments(self.path)
        return bool(sealed) and _identity(sealed[-1]) == self._identity

    def _roll_over(self) -> None:
        """Seal the live file as the next segment (its Parquet twin first) and go on in a new, empty live file."""
        folder = segment_folder(self.path)
        if not self._is_sealed():
            if self._damaged:
                self._cut_back()  # a failed append's bytes must not be sealed
            sealed = sealed_segments(self.path)
            rows = _parse(_read_at(self._fd, self._acknowledged, 0), self.record_type, self.path)
            number = _segment_number(sealed[-1]) + 1 if sealed else 1
            while not _free_for(folder / f"segment-{number:06d}.parquet", rows, self.record_type):
                number += 1  # a sealed segment's twin whose JSON lines are gone: kept, and read in its place
            segment = folder / f"segment-{number:06d}.jsonl"
            private_folder(folder)
            twin = segment.with_suffix(".parquet")
            written = folder / f".{twin.name}.tmp"
            pq.write_table(rows, written)
            fsync_replace(written, twin)
            os.link(self.path, segment)  # the seal: from here on readers take these records from the segment
            fsync_folder(folder)
        fresh_path = self.path.with_name(f".{self.path.name}.next")
        fresh = os.open(fresh_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            fcntl.flock(fresh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked before it has the name: no other writer
            os.fchmod(fresh, 0o600)
            os.fsync(fresh)
            os.replace(fresh_path, self.path)
        except BaseException:
            os.close(fresh)
            raise
        os.close(self._fd)
        opened = os.fstat(fresh)
        self._fd, self._identity = fresh, (opened.st_dev, opened.st_ino)
        self._acknowledged = 0
        fsync_folder(self.path.parent)

    def _cut_back(self) -> None:
        """Drop every byte after the last acknowledged append."""
        os.ftruncate(self._fd, self._acknowledged)
        os.fsync(self._fd)
        self._damaged = False

    def close(self) -> None:
        """Cut off a failed append if one is left, then release the lock and the handle."""
        if self._fd < 0:
            return
        try:
            if self._damaged:
                self._cut_back()
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "JournalWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # os.write may write less than asked
        view = view[os.write(fd, view):]


def _cut_partial_append(fd: int, path: Path) -> int:
    """Cut what a crash mid-append left (a torn line, or lines of an append without its end), kept aside in a
    `.cut-` file beside the journal (lines appended by something that does not mark its appends, e.g. an older
    version, must not simply vanish); the length of what is left."""
    size = os.fstat(fd).st_size
    keep = _complete_length(lambda offset, length: _read_at(fd, length, offset), size)
    if keep < size:
        aside = path.with_name(f"{path.name}.cut-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}")
        try:
            with open(os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                f.write(_read_at(fd, size - keep, keep))
                f.flush()
                os.fsync(f.fileno())
            fsync_folder(path.parent)  # the bytes aside are durable before the journal loses them
        except OSError:
            aside.unlink(missing_ok=True)
            raise
        os.ftruncate(fd, keep)
        os.fsync(fd)
        logging.warning("%s: cut off %d bytes after its last complete append (never acknowledged: a crash "
                        "mid-append, or lines written without an append's end); kept in %s", path, size - keep, aside)
    return keep


Read = Callable[[int, int], bytes]  # (offset, length) → those bytes of a journal


def _complete_length(read: Read, size: int) -> int:
    """How many of a journal's `size` bytes are complete appends: up to the last APPEND_END; where no append has
    ended, the complete lines before the first marked append (an older journal's records). One rule for the writer
    (a file, read in chunks: it may pass 2 GiB) and the readers (bytes in memory)."""
    end = _end_of_last(read, size, APPEND_END)
    if end:
        return end
    first = _first_append(read, size)
    return _end_of_last(read, size, b"\n") if first is None else first


def _end_of_last(read: Read, size: int, needle: bytes) -> int:
    """The offset just past the last `needle` in the first `size` bytes, or 0. Read backwards in 1 MiB chunks: a
    marked journal ends near its last mark; an unmarked one (older) is read once, never whole at a time."""
    position = size
    while position > 0:
        start = max(0, position - (1 << 20))
        found = read(start, min(size, position + len(needle) - 1) - start).rfind(needle)  # overlap: across chunks
        if found >= 0:
            return start + found + len(needle)
        position = start
    return 0


def _first_append(read: Read, size: int) -> int | None:
    """The offset of the first line that begins a marked append, or None. Read forwards in 1 MiB chunks."""
    if size and read(0, 1) == APPEND_START:
        return 0
    needle = b"\n" + APPEND_START
    for start in range(0, size, 1 << 20):
        found = read(start, min(size, start + (1 << 20) + len(needle) - 1) - start).find(needle)
        if found >= 0:
            return start + found + 1
    return None


def _read_at(fd: int, length: int, offset: int) -> bytes:
    """`length` bytes from `offset`: one pread returns at most about 2 GiB, so read until all are there."""
    parts, done = [], 0
    while done < length:
        part = os.pread(fd, length - done, offset + done)
        if not part:
            break
        parts.append(part)
        done += len(part)
    return b"".join(parts)


def complete_appends(data: bytes) -> bytes:
    """Journal bytes up to the end of the last complete append (`_complete_length`)."""
    return data[: _complete_length(lambda offset, length: data[offset:offset + length], len(data))]


def segment_folder(path: Path) -> Path:
    """Where a journal's sealed segments live: journal/votes.jsonl → journal/votes/."""
    return Path(path).with_suffix("")


def sealed_segments(path: Path) -> list[Path]:
    """A journal's sealed segments (their JSON-lines files), oldest first."""
    folder = segment_folder(path)
    return sorted(folder.glob("segment-[0-9][0-9][0-9][0-9][0-9][0-9].jsonl")) if folder.is_dir() else []


def read_journal(path: Path, record_type: type) -> pa.Table:
    """All complete records of a journal, sealed segments then the live file, as an Arrow table with the record's
    schema."""
    sealed, live = _snapshot(Path(path), record_type)
    return pa.concat_tables([*(_read_sealed(segment, record_type) for segment in sealed),
                             _parse(live, record_type, path)])


def journal_parts(path: Path, record_type: type) -> tuple[list[Path], pa.Table]:
    """A consistent view of a journal for a scan: the Parquet twins of its sealed segments, and the other records
    (the live file's, after those of any sealed segment whose twin is missing)."""
    sealed, live = _snapshot(Path(path), record_type)
    twinned = [segment for segment in sealed if segment.with_suffix(".parquet").is_file()]
    rest = [_read_sealed(segment, record_type) for segment in sealed if segment not in twinned]
    return [s.with_suffix(".parquet") for s in twinned], pa.concat_tables([*rest, _parse(live, record_type, path)])


def _snapshot(path: Path, record_type: type) -> tuple[list[Path], bytes]:
    """The sealed segments and the live file's bytes, as of one moment (not across a roll-over)."""
    for _ in range(100):  # a reader meets a roll-over once per segment_bytes of appends: a retry is rare
        sealed = sealed_segments(path)
        data, identity = _read_live(path)
        if sealed and identity == _identity(sealed[-1]):
            data = b""  # sealed and not yet replaced: its records are the segment's
        if sealed_segments(path) == sealed:
            return _without_holes(path, sealed, lambda: _parse(data, record_type, path), record_type), data
    raise UserError(f"{path}: the journal kept rolling over while it was read; retry")


def _without_holes(path: Path, sealed: list[Path], live: Callable[[], pa.Table], record_type: type) -> list[Path]:
    """Every sealed segment from the first to the newest: one whose JSON lines are gone is read from its Parquet twin
    (written before the seal, so whole); one with neither is an error, as counting around it would lose its records
    without a word. A twin after the newest segment is one too, unless it is the start of the live file (a seal cut
    short, or under way now)."""
    numbers = {_segment_number(segment) for segment in sealed}
    newest = max(numbers, default=0)
    after = segment_folder(path) / f"segment-{newest + 1:06d}.parquet"
    if after.is_file() and not _free_for(after, live(), record_type):
        newest += 1
    segments = [segment_folder(path) / f"segment-{n:06d}.jsonl" for n in range(1, newest + 1)]
    for n, segment in enumerate(segments, start=1):
        if n not in numbers and not segment.with_suffix(".parquet").is_file():
            raise UserError(f"{segment}: missing, and its Parquet twin too: sealed segment {n} of {len(segments)} of "
                            f"the journal, whose records would not count; restore it from the copy or backup the "
                            f"campaign came from (or, to go on without them, create it empty)")
    return segments


def _free_for(twin: Path, live: pa.Table, record_type: type) -> bool:
    """Whether a seal of the live records `live` may write `twin`: there is none, or it holds the start of these
    records (a seal that stopped between its twin and its link, or one under way now, whose twin a reader may see
    hold more of them than it read). Any other twin there is a sealed segment whose JSON lines are gone."""
    if not twin.is_file():
        return True
    try:
        kept = read_twin(twin, record_type)
    except (OSError, pa.ArrowException):
        return False  # unreadable: a reader names it; a seal keeps it and takes the next number
    shared = min(kept.num_rows, live.num_rows)
    return live.num_rows > 0 and kept.slice(0, shared).equals(live.slice(0, shared))


def _read_sealed(segment: Path, record_type: type) -> pa.Table:
    """A sealed segment's records: from its Parquet twin, or its JSON lines where the twin is missing."""
    twin = segment.with_suffix(".parquet")
    return read_twin(twin, record_type) if twin.is_file() else _parse(segment.read_bytes(), record_type, segment)


def read_twin(twin: Path, record_type: type) -> pa.Table:
    """The records of one sealed segment from its Parquet twin."""
    return conform(pq.read_table(twin), record_type, str(twin))


def _read_live(path: Path) -> tuple[bytes, tuple[int, int] | None]:
    """The live file's bytes and identity (empty and None when there is none)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return b"", None
    except IsADirectoryError:
        raise UserError(_not_a_file(path)) from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the journal ({exc.strerror}); check its permissions") from None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise UserError(_not_a_file(path))
        with open(fd, "rb", closefd=False) as f:
            return f.read(), (found.st_dev, found.st_ino)
    finally:
        os.close(fd)


def _parse(data: bytes, record_type: type, where: Path) -> pa.Table:
    """The complete appends of journal bytes as a table of the record's schema (a partial last one left out)."""
    schema = arrow_schema(record_type)
    data = complete_appends(data)
    if not data:
        return pa.Table.from_batches([], schema=schema)  # schema.empty_table() would import pandas
    try:
        table = pa_json.read_json(
            io.BytesIO(data),
            parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except pa.ArrowInvalid as exc:
        line = _first_bad_line(data)  # Arrow counts its rows from 0, an editor its lines from 1
        problem = f"line {line} is not JSON" if line else str(exc)
        raise UserError(f"{where}: journal is damaged ({problem}); restore it from a backup") from None
    return table.select(schema.names).cast(schema)


def _first_bad_line(data: bytes) -> int | None:
    """The number (from 1) of the first line that is not JSON, or None when every line is."""
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():  # pyarrow skips blank lines
            continue
        try:
            json.loads(line)
        except ValueError:
            return number
    return None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def _segment_number(segment: Path) -> int:
    return int(segment.stem.rsplit("-", 1)[1])


def _not_a_file(path: Path) -> str:
    return (f"{path}: is a folder, not a journal file; move it out of the way and put the journal file back "
            f"(or, if there was none, remove the folder: an empty journal is made again)")
