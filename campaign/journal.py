"""Append-only JSON-lines journal: each append is written and fsynced before it returns, or not at all.

Votes and ratings land here, not in the DuckDB catalog, so the annotation server never holds the
catalog's write lock and every acknowledged vote is on disk. An append that fails (a full disk, an I/O
error) is cut off again before the error is reported, so a vote is on disk exactly when it was
acknowledged. A crash can leave at most one torn last line, which was never acknowledged: readers ignore
it and the next writer cuts it off.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import threading
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.json as pa_json

from data_schemas import UserError, arrow_schema, to_rows


class AppendFailed(Exception):
    """An append that stored nothing: the journal is back at its last acknowledged length."""


class JournalWriter:
    """The one open append handle of a journal file; holds an exclusive lock on it while open.

    Writes go straight to the file descriptor: no buffer can keep the bytes of a failed append and
    write them later, after the vote was refused.
    """

    def __init__(self, path: Path, record_type: type) -> None:
        self.path = Path(path)
        self.record_type = record_type
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise UserError(f"{self.path}: another process is writing this journal; stop it first") from None
        self._acknowledged = _cut_torn_tail(self._fd)  # bytes known to be complete and durable
        self._damaged = False  # a failed append could not be cut off yet
        self._lock = threading.Lock()

    def append(self, records: Iterable[Any]) -> None:
        """Write the records as one block and make it durable; on any error store none of it (AppendFailed)."""
        block = b"".join(
            json.dumps(row, sort_keys=True, ensure_ascii=False).encode() + b"\n" for row in to_rows(records)
        )
        with self._lock:
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
    data = path.read_bytes()
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
