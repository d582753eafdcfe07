"""Append-only JSON-lines journal: each append is written and fsynced before it returns, or not at all.

Votes and ratings land here, not in the DuckDB catalog, so the annotation server never holds the
catalog's write lock and every acknowledged vote is on disk. An append that fails (a full disk, an I/O
error) is cut off again before the error is reported, so a vote is on disk exactly when it was
acknowledged. A crash can leave at most one torn last line, which was never acknowledged: readers ignore
it and the next writer cuts it off.

A journal moved away or replaced (by another file or a folder) while its writer is open is noticed before
the next append: the append is refused (JournalMoved) and nothing goes to the moved file, until the
journal is back where it was. Journal files are created 0600 in a 0700 folder: they name the annotators.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.json as pa_json

from data_schemas import UserError, arrow_schema, to_rows


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

    def __init__(self, path: Path, record_type: type) -> None:
        self.path = Path(path)
        self.record_type = record_type
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
        self._acknowledged = _cut_torn_tail(self._fd)  # bytes known to be complete and durable
        self._damaged = False  # a failed append could not be cut off yet
        self._lock = threading.Lock()

    def append(self, records: Iterable[Any]) -> None:
        """Write the records as one block and make it durable; on any error store none of it (AppendFailed)."""
        block = b"".join(
            json.dumps(row, sort_keys=True, ensure_ascii=False).encode() + b"\n" for row in to_rows(records)
        )
        with self._lock:
            self._require_in_place()
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


def _cut_torn_tail(fd: int) -> int:
    """Cut a last line without its newline (a crash mid-append); the length of what is left."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    keep = os.pread(fd, size, 0).rfind(b"\n") + 1
    os.ftruncate(fd, keep)
    os.fsync(fd)
    return keep


def read_journal(path: Path, record_type: type) -> pa.Table:
    """All complete lines of a journal as an Arrow table with the record's schema."""
    schema = arrow_schema(record_type)
    path = Path(path)
    if not path.exists():
        return schema.empty_table()
    if not path.is_file():
        raise UserError(_not_a_file(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the journal ({exc.strerror}); check its permissions") from None
    data = data[: data.rfind(b"\n") + 1]
    if not data:
        return schema.empty_table()
    try:
        table = pa_json.read_json(
            io.BytesIO(data),
            parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except pa.ArrowInvalid as exc:
        raise UserError(f"{path}: journal is damaged ({exc}); restore it from a backup") from None
    return table.select(schema.names).cast(schema)


def _not_a_file(path: Path) -> str:
    return (f"{path}: is a folder, not a journal file; move it out of the way and put the journal file back "
            f"(or, if there was none, remove the folder: an empty journal is made again)")
