"""The campaign store: one directory holding a DuckDB catalog, published snapshots, journals and media.

Layout of a campaign directory:

    campaign.json              format version
    catalog.duckdb             conditions, clips, scores, annotators: the source of truth, one writer at a time
    tables/<table>.parquet     snapshot of each catalog table, replaced atomically after every write
    journal/votes.jsonl        append-only votes, fsynced per append (the annotation server's)
    journal/ratings.jsonl      append-only ratings
    journal/showings.jsonl     append-only showings (the annotation server's: each annotator's open item)
    journal/practice.jsonl     append-only practice answers (gold items a new annotator practises on; not votes)
    task.json                  the annotation task (mode, criteria and their definitions, overlap, gold rate)
    media/<sha[:2]>/<sha>.<ext> content-addressed media: the same bytes are stored once
    shards/<command>/rank-<K>/<part>/<table>.parquet  rows of one process of a sharded run, not yet in the
                               catalog (campaign/shards.py)

DuckDB lets one process hold a database file for writing and no other process open it meanwhile,
not even read-only. So writers hold the catalog only for one short transaction (retrying while
another writer has it) and publish the tables they changed as Parquet snapshots; readers never open
the catalog at all, they read the snapshots and journals, so a reader cannot meet a lock.

Everything in a campaign is private to its owner: folders 0700, files 0600 (the annotators table holds
password hashes, the journals name who voted what), whatever the process's umask.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from campaign.journal import read_journal
from media_io.hashing import sha256_file
from data_schemas import Annotator, Clip, Condition, Rating, Score, UserError, Vote, arrow_schema, conform, to_table
from data_schemas.records import MEDIA_PATTERN

FORMAT_VERSION = 1
LOCK_TIMEOUT_S = 120.0
PRIVATE_FILE, PRIVATE_FOLDER = 0o600, 0o700

# Catalog tables: record type and primary key.
CATALOG: dict[str, tuple[type, tuple[str, ...]]] = {
    "conditions": (Condition, ("condition_id",)),
    "clips": (Clip, ("sha256",)),
    # One current value per clip and metric: scoring with other weights (a new version) replaces it.
    "scores": (Score, ("clip", "scorer", "metric")),
    "annotators": (Annotator, ("name",)),
}
_REPLACED = {"scores", "annotators"}  # tables whose new rows replace the old; others keep the first
JOURNALS: dict[str, type] = {"votes": Vote, "ratings": Rating}

_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    pa.list_(pa.string()): "VARCHAR[]",
}


def _ddl(table: str) -> str:
    record_type, key = CATALOG[table]
    columns = [
        f'"{f.name}" {_SQL_TYPES[f.type]}{"" if f.nullable else " NOT NULL"}' for f in arrow_schema(record_type)
    ]
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)}, PRIMARY KEY ({', '.join(key)}))"


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def fsync_replace(tmp: Path, dest: Path) -> None:
    """Make `tmp` private and durable, then rename it over `dest`: readers see the old file or the new one,
    never half."""
    with open(tmp, "rb") as f:
        os.fchmod(f.fileno(), PRIVATE_FILE)
        os.fsync(f.fileno())
    os.replace(tmp, dest)


def private_folder(path: Path) -> None:
    """Create a folder (and its missing parents) readable by its owner only; tighten it if it exists."""
    path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_FOLDER)


class Campaign:
    """A campaign directory; cheap to construct, opens the catalog only inside `write`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- creation -------------------------------------------------------------------------------

    @classmethod
    def open(cls, root: Path, create: bool = False) -> "Campaign":
        """Open an existing campaign, or create an empty one when `create` is set."""
        campaign = cls(root)
        marker = campaign.root / "campaign.json"
        if marker.exists():
            version = json.loads(marker.read_text()).get("format")
            if version != FORMAT_VERSION:
                raise UserError(f"{marker}: campaign format {version} is not {FORMAT_VERSION}; upgrade portrait-dpo")
            return campaign
        if not create:
            raise UserError(f"{campaign.root}: not a campaign (no campaign.json); create one with `pairs ingest`")
        if campaign.root.exists() and any(campaign.root.iterdir()):
            raise UserError(f"{campaign.root}: exists and is not an empty folder; choose a new --campaign folder")
        for folder in (campaign.root, *(campaign.root / sub for sub in ("tables", "journal", "media"))):
            private_folder(folder)
        with campaign.write(*CATALOG):
            pass
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with open(fd, "w") as f:
            f.write(json.dumps({"format": FORMAT_VERSION}) + "\n")
        return campaign

    # -- writing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self, *tables: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction on the catalog; on success the named tables' snapshots are republished."""
        con = self._connect_catalog()
        try:
            con.execute("SET TimeZone = 'UTC'")
            for table in CATALOG:
                con.execute(_ddl(table))
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            for table in tables:
                self._publish(con, table)
        finally:
            con.close()

    def _connect_catalog(self) -> duckdb.DuckDBPyConnection:
        path = self.root / "catalog.duckdb"
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        delay = 0.005
        while True:
            try:
                con = duckdb.connect(str(path))
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise UserError(f"{path}: cannot open the catalog ({exc}); check the campaign folder") from None
                if time.monotonic() > deadline:
                    raise UserError(
                        f"{path}: another process has held the catalog for over {LOCK_TIMEOUT_S:.0f} s; "
                        "wait for it to finish and retry"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            # DuckDB creates it by the umask (its WAL lives in the 0700 folder); another owner's catalog is left be.
            with contextlib.suppress(PermissionError):
                os.chmod(path, PRIVATE_FILE)
            return con

    def _publish(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        dest = self.root / "tables" / f"{table}.parquet"
        tmp = dest.with_name(f".{table}.{os.getpid()}.parquet")
        con.execute(f"COPY (SELECT * FROM {table}) TO {_sql_string(tmp)} (FORMAT parquet)")
        fsync_replace(tmp, dest)

    def add_tables(self, parts: Iterable[dict[str, pa.Table]]) -> dict[str, int]:
        """Insert parts ({table: rows}) in one transaction, one after the other; returns rows changed per table.

        Conditions and clips already present are kept; scores and annotators replace theirs (by primary key).
        """
        parts = [{name: rows for name, rows in part.items() if rows.num_rows} for part in parts]
        names = {name for part in parts for name in part}
        changed = dict.fromkeys(names, 0)
        if not names:
            return changed
        with self.write(*names) as con:
            for part in parts:
                for name in CATALOG:  # catalog order: a clip's condition goes in before the clip
                    if name in part:
                        verb = "INSERT OR REPLACE INTO" if name in _REPLACED else "INSERT OR IGNORE INTO"
                        con.register("batch", part[name])
                        changed[name] += con.execute(f"{verb} {name} SELECT * FROM batch").fetchall()[0][0]
                        con.unregister("batch")
        return changed

    def add_rows(self, rows: dict[str, Iterable[Any]]) -> dict[str, int]:
        """Insert records of several tables ({table: records}) in one transaction; see `add_tables`."""
        return self.add_tables([{table: to_table(records, CATALOG[table][0]) for table, records in rows.items()}])

    def _insert(self, table: str, records: Iterable[Any]) -> int:
        return self.add_rows({table: records}).get(table, 0)

    def add_conditions(self, conditions: Iterable[Condition]) -> int:
        """Insert conditions; ones already present are kept as they are. Returns how many were new."""
        return self._insert("conditions", conditions)

    def add_clips(self, clips: Iterable[Clip]) -> int:
        """Insert clips; a clip already present (same sha256) is kept. Returns how many were new."""
        return self._insert("clips", clips)

    def add_scores(self, scores: Iterable[Score]) -> int:
        """Insert or replace scores keyed by (clip, scorer, metric); the newest version wins."""
        return self._insert("scores", scores)

    def put_annotator(self, annotator: Annotator) -> None:
        """Create or update an annotator account."""
        self._insert("annotators", [annotator])

    # -- media ----------------------------------------------------------------------------------

    def add_media(self, source: Path, sha256: str | None = None) -> str:
        """Copy a file into content-addressed media (once per content); returns its campaign path."""
        source = Path(source)
        sha256 = sha256 or sha256_file(source)
        relative = f"media/{sha256[:2]}/{sha256}{source.suffix.lower()}"
        dest = self.root / relative
        if not dest.exists():
            dest.parent.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, tmp)
            fsync_replace(Path(tmp.name), dest)
        return relative

    def media_file(self, relative: str) -> Path:
        """The file behind a campaign media path; anything that is not a media path is refused."""
        if not re.fullmatch(MEDIA_PATTERN, relative or ""):
            raise UserError(f"{relative!r}: not a campaign media path")
        return self.root / relative

    # -- reading --------------------------------------------------------------------------------

    def table(self, name: str) -> pa.Table:
        """A catalog snapshot or a journal as an Arrow table with its record's schema."""
        if name in JOURNALS:
            return read_journal(self.journal_path(name), JOURNALS[name])
        if name not in CATALOG:
            raise ValueError(f"unknown table {name!r}")
        path = self.root / "tables" / f"{name}.parquet"
        return conform(pq.read_table(path), CATALOG[name][0], str(path))

    def journal_path(self, name: str) -> Path:
        """Where a journal (votes, ratings) lives."""
        return self.root / "journal" / f"{name}.jsonl"

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with a view per catalog table and a table per journal.

        Catalog views read the snapshots lazily, so each query sees the latest published state.
        """
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        for name in CATALOG:
            path = self.root / "tables" / f"{name}.parquet"
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({_sql_string(path)})")
        for name in JOURNALS:
            con.register(name, self.table(name))
        return con
