"""Append-only JSON-lines journal: each append is flushed and fsynced before it returns.

Votes and ratings land here, not in the DuckDB catalog, so the annotation server never holds the
catalog's write lock and every acknowledged vote is on disk. A crash can leave at most one torn last
line, which was never acknowledged: readers ignore it and the next writer cuts it off.
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


class JournalWriter:
    """The one open append handle of a journal file; holds an exclusive lock on it while open."""

    def __init__(self, path: Path, record_type: type) -> None:
        self.path = Path(path)
        self.record_type = record_type
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+b")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise UserError(f"{self.path}: another process is writing this journal; stop it first") from None
        _cut_torn_tail(self._file)
        self._lock = threading.Lock()

    def append(self, records: Iterable[Any]) -> None:
        """Write the records as one block and make it durable (flush + fsync) before returning."""
        block = b"".join(
            json.dumps(row, sort_keys=True, ensure_ascii=False).encode() + b"\n" for row in to_rows(records)
        )
        with self._lock:
            self._file.write(block)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Release the lock and the handle."""
        self._file.close()

    def __enter__(self) -> "JournalWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cut_torn_tail(file: io.BufferedRandom) -> None:
    file.seek(0, os.SEEK_END)
    size = file.tell()
    if size == 0:
        return
    file.seek(max(0, size - 1))
    if file.read(1) == b"\n":
        return
    file.seek(0)
    data = file.read()
    file.truncate(data.rfind(b"\n") + 1)
    file.flush()
    os.fsync(file.fileno())
    file.seek(0, os.SEEK_END)


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
