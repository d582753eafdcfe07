"""The campaign store: one directory holding a DuckDB catalog, published snapshots, journals and media.

Layout of a campaign directory:

    campaign.json              format version
    catalog.duckdb             conditions, clips, scores, annotators: the source of truth, one writer at a time
    tables/<table>/part-<pp>.parquet  snapshot of conditions, clips and scores in up to 256 partitions (pp = the
                               first two hex digits of the clip sha256, or of md5(condition_id)); a write
                               replaces, each atomically, only the partitions its rows fall in; a partition
                               without rows has no file
    tables/<table>/parts.json  the partitions that hold rows, replaced after their files: readers tell a deleted
                               partition file from one never written
    tables/annotators.parquet  snapshot of the (small) annotators table, replaced atomically after every write
    journal/votes.jsonl        append-only votes, fsynced per append (the annotation server's): the live segment
    journal/votes/segment-NNNNNN.jsonl|.parquet  sealed segments of the votes journal and their Parquet twins,
                               written once when the live file passes 16 MiB (campaign/journal.py); every
                               journal rolls over the same way
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
the catalog at all, they read the snapshots and journals, so a reader cannot meet a lock. At a million
clips and ten million votes readers scan Parquet with DuckDB (`connect`, `table_files`): partitions of
the tables, twins of the sealed journal segments, and parse only the live journal segments' JSON.
A reader may see one write's partitions land one after another, never half a partition file.

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
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from campaign.files import PRIVATE_FILE, PRIVATE_FOLDER, fsync_replace, private_folder
from campaign.damage import UnreadableParquet, read_whole, repair_command, require_readable
from campaign.journal import journal_parts, read_journal
from media_io.hashing import sha256_file
from data_schemas import Annotator, Clip, Condition, Rating, Score, UserError, Vote, arrow_schema, conform, to_table
from data_schemas.records import MEDIA_PATTERN

FORMAT_VERSION = 2  # 2: conditions, clips and scores published in partitions; 1 is upgraded on open
LOCK_TIMEOUT_S = 120.0

# Catalog tables: record type and primary key.
CATALOG: dict[str, tuple[type, tuple[str, ...]]] = {
    "conditions": (Condition, ("condition_id",)),
    "clips": (Clip, ("sha256",)),
    # One current value per clip and metric: scoring with other weights (a new version) replaces it.
    "scores": (Score, ("clip", "scorer", "metric")),
    "annotators": (Annotator, ("name",)),
}
_REPLACED = {"scores", "annotators"}  # tables whose new rows replace the old; others keep the first
# The partition of a row of each partitioned table: two hex digits of (a hash of) its key, so clips and their scores
# spread evenly and a write of a few clips' rows (a score batch: 64 rows) republishes a few 256ths of the table.
PARTITIONS: dict[str, str] = {
    "conditions": "left(md5(condition_id), 2)",
    "clips": "left(sha256, 2)",
    "scores": "left(clip, 2)",
}
PART_NAMES = tuple(f"{i:02x}" for i in range(256))
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


def _writer_id() -> str:
    """Names this process's and thread's temporary files: two writers never share one."""
    return f"{os.getpid()}-{threading.get_ident()}"


def _sql_list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join(map(_sql_string, paths)) + "]"


@dataclass(frozen=True)
class Republished:
    """What `Campaign.republish` did: rows per table, snapshot rows that differed from the catalog's (the catalog's
    kept), and the journal twins deleted as unreadable."""

    rows: dict[str, int]
    differing: dict[str, int]
    dropped_twins: list[Path]


def _catalog_differences(con: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...], snapshot: Path) -> int:
    """Rows of a readable snapshot that the catalog holds otherwise (0 for an unreadable one, the snapshot repair is
    for); UserError when the catalog lacks some of its rows: then the catalog is older than the tables (a restored
    backup) and republishing would drop them."""
    rows = read_whole(snapshot)  # by pyarrow: a failed read inside DuckDB would abort the transaction
    if rows is None:
        return 0
    con.register("snapshot_rows", rows)
    try:
        lacking = con.execute(f"SELECT count(*) FROM snapshot_rows ANTI JOIN {table} USING ({', '.join(key)})"
                              ).fetchall()[0][0]
        if lacking:
            raise UserError(f"{snapshot}: holds {lacking} {table} rows that the campaign's catalog.duckdb lacks, so "
                            "the catalog is older than the tables and republishing would drop them; nothing was "
                            "changed: restore the catalog.duckdb that belongs with these tables")
        columns = ", ".join(f'"{name}"' for name in rows.column_names)
        return con.execute(f"SELECT count(*) FROM (SELECT {columns} FROM snapshot_rows EXCEPT "
                           f"SELECT {columns} FROM {table})").fetchall()[0][0]
    finally:
        con.unregister("snapshot_rows")


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
            try:
                version = json.loads(marker.read_text()).get("format")
            except (ValueError, AttributeError):  # not JSON, or not an object
                raise UserError(f"{marker}: not a campaign marker, which is {{\"format\": {FORMAT_VERSION}}}; restore "
                                "it, or open the right folder") from None
            if version == 1:
                campaign._upgrade_from_1(marker)
            elif version != FORMAT_VERSION:
                raise UserError(f"{marker}: campaign format {version} is not {FORMAT_VERSION}; upgrade portrait-dpo")
            if not (campaign.root / "tables").is_dir():
                raise UserError(f"{campaign.root}: campaign.json without its tables/ folder, an incomplete copy; copy "
                                "the whole campaign folder")
            return campaign
        if not create:
            raise UserError(f"{campaign.root}: not a campaign (no campaign.json); create one with `pairs ingest`")
        if campaign.root.exists() and any(campaign.root.iterdir()):
            raise UserError(f"{campaign.root}: exists and is not an empty folder; choose a new --campaign folder")
        for folder in (campaign.root, *(campaign.root / sub for sub in ("tables", "journal", "media"))):
            private_folder(folder)
        with campaign.write(*CATALOG):
            pass
        campaign._write_marker(marker)
        return campaign

    def _write_marker(self, marker: Path) -> None:
        _write_json(marker, {"format": FORMAT_VERSION})

    def _upgrade_from_1(self, marker: Path) -> None:
        """Format 1 kept each table in one file: publish the partitions, then say so, then drop the old files."""
        with self.write(*PARTITIONS):
            pass
        self._write_marker(marker)
        for table in PARTITIONS:
            (self.root / "tables" / f"{table}.parquet").unlink(missing_ok=True)

    # -- writing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self, *tables: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction on the catalog; on success the named tables' snapshots are republished whole."""
        with self._transaction(dict.fromkeys(tables)) as con:
            yield con

    @contextlib.contextmanager
    def _transaction(self, publish: dict[str, set[str] | None]) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction; on success each table in `publish` is republished: the partitions named (the
        block may add to them), or all of them for None."""
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
            for table, parts in publish.items():
                self._publish(con, table, parts)
        finally:
            con.close()

    def republish(self) -> Republished:
        """Write every table's snapshot (tables/) again from the catalog, the source they are made from, and delete
        sealed journal segments' twins that cannot be read (their JSON lines are read instead): what a damaged or
        deleted file needs. Refused, changing nothing, when the catalog lacks rows a snapshot holds."""
        with self.write(*CATALOG) as con:
            differing = {table: sum(_catalog_differences(con, table, key, snapshot)
                                    for snapshot in self._published_files(table))
                         for table, (_, key) in CATALOG.items()}
            rows = {table: con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] for table in CATALOG}
        dropped = []
        for twin in sorted((self.root / "journal").glob("*/segment-[0-9]*.parquet")):
            if twin.with_suffix(".jsonl").is_file() and read_whole(twin) is None:
                twin.unlink()
                dropped.append(twin)
        return Republished(rows, differing, dropped)

    def _connect_catalog(self) -> duckdb.DuckDBPyConnection:
        path = self.root / "catalog.duckdb"
        if not path.exists() and (self.root / "campaign.json").exists():
            # A new catalog would be empty, and publishing from it would replace the snapshots with empty tables.
            raise UserError(f"{path}: missing; restore it (a campaign's tables are made from it) or copy the whole "
                            "campaign folder again")
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

    def _publish(self, con: duckdb.DuckDBPyConnection, table: str, parts: set[str] | None = None) -> None:
        """Replace a table's snapshot, or of a partitioned table the named partitions (all for None)."""
        if table not in PARTITIONS:
            self._copy(con, f"SELECT * FROM {table}", self.root / "tables" / f"{table}.parquet")
            return
        parts = PART_NAMES if parts is None else sorted(parts)
        if not parts:
            return
        folder = self.root / "tables" / table
        private_folder(folder)
        staging = folder / f".staging-{_writer_id()}"
        shutil.rmtree(staging, ignore_errors=True)
        chosen = ", ".join(f"'{part}'" for part in parts)  # hex digits only: nothing to quote
        con.execute(f"COPY (SELECT *, {PARTITIONS[table]} AS _part FROM {table} WHERE {PARTITIONS[table]} IN "
                    f"({chosen})) TO {_sql_string(staging)} (FORMAT parquet, PARTITION_BY (_part))")
        filled = set()
        try:
            for part in parts:
                written = sorted((staging / f"_part={part}").glob("*.parquet"))
                if len(written) > 1:  # DuckDB wrote a partition in pieces: one file per partition, always
                    self._copy(con, f"SELECT * FROM read_parquet({_sql_list(written)})", written[0])
                if written:
                    fsync_replace(written[0], self._part_file(table, part))
                    filled.add(part)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._list_parts(con, table, set(parts), filled)
        for part in set(parts) - filled:  # emptied and unlisted now: a reader that finds it gone reads the list again
            self._part_file(table, part).unlink(missing_ok=True)

    def _list_parts(self, con: duckdb.DuckDBPyConnection, table: str, published: set[str], filled: set[str]) -> None:
        """Keep tables/<table>/parts.json, the partitions that hold rows, exact after publishing `published` (of
        which `filled` got rows), so that a reader can tell a deleted partition file from one never written. Written
        after the partitions' files: a reader that reads the list first finds every partition it names."""
        try:
            before = set() if published == set(PART_NAMES) else self._listed_parts(table)
        except UnreadableParquet:  # a damaged list: made again below
            before = None
        if before is None:  # no list yet (a campaign from before it), or a damaged one: the catalog knows
            listed = {row[0] for row in con.execute(f"SELECT DISTINCT {PARTITIONS[table]} FROM {table}").fetchall()}
        else:
            listed = (before - published) | filled
        if self._parts_list(table).is_dir():
            raise UserError(f"{self._parts_list(table)}: a folder where the list of the table's partitions belongs; "
                            f"move it out of the way and run {repair_command(self.root)}")
        _write_json(self._parts_list(table), sorted(listed))

    def _parts_list(self, table: str) -> Path:
        return self.root / "tables" / table / "parts.json"

    def _listed_parts(self, table: str) -> set[str] | None:
        """The partitions of a table that hold rows, as its publisher listed them; None for a campaign from before
        the list (it is written at the table's next publish)."""
        path = self._parts_list(table)
        try:
            listed = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            raise UnreadableParquet(path, "not the list of the table's partitions") from None
        if not isinstance(listed, list) or not all(isinstance(p, str) and p in PART_NAMES for p in listed):
            raise UnreadableParquet(path, "not the list of the table's partitions")
        return set(listed)

    @staticmethod
    def _copy(con: duckdb.DuckDBPyConnection, query: str, dest: Path) -> None:
        tmp = dest.with_name(f".{dest.name}.{_writer_id()}")
        con.execute(f"COPY ({query}) TO {_sql_string(tmp)} (FORMAT parquet)")
        fsync_replace(tmp, dest)

    def _part_file(self, table: str, part: str) -> Path:
        return self.root / "tables" / table / f"part-{part}.parquet"

    def add_tables(self, parts: Iterable[dict[str, pa.Table]]) -> dict[str, int]:
        """Insert parts ({table: rows}) in one transaction, one after the other; returns rows changed per table.

        Conditions and clips already present are kept; scores and annotators replace theirs (by primary key).
        """
        parts = [{name: rows for name, rows in part.items() if rows.num_rows} for part in parts]
        names = {name for part in parts for name in part}
        changed = dict.fromkeys(names, 0)
        if not names:
            return changed
        touched: dict[str, set[str] | None] = {name: set() if name in PARTITIONS else None for name in names}
        with self._transaction(touched) as con:
            for part in parts:
                for name in CATALOG:  # catalog order: a clip's condition goes in before the clip
                    if name in part:
                        verb = "INSERT OR REPLACE INTO" if name in _REPLACED else "INSERT OR IGNORE INTO"
                        con.register("batch", part[name])
                        changed[name] += con.execute(f"{verb} {name} SELECT * FROM batch").fetchall()[0][0]
                        if name in PARTITIONS:  # a superset of the rows changed: ignored rows' partitions too
                            touched[name] |= {p for p, in con.execute(
                                f"SELECT DISTINCT {PARTITIONS[name]} FROM batch").fetchall()}
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
        relative = media_path(sha256, source.suffix.lower())
        dest = self.root / relative
        if not dest.exists():
            dest.parent.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
            tmp = None
            try:
                with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as handle:
                    tmp = Path(handle.name)
                    with open(source, "rb") as src:
                        shutil.copyfileobj(src, handle)
                fsync_replace(tmp, dest)
            except BaseException:  # a full disk: no part file left among the media
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
                raise
        return relative

    def outside(self, path: Path, option: str) -> Path:
        """`path`, refused when it is the campaign folder or inside it: an output written there would overwrite or
        mix with what the campaign stores."""
        if Path(path).resolve().is_relative_to(self.root.resolve()):
            raise UserError(f"{option} {path}: inside the campaign folder {self.root}; write it outside the campaign")
        return path

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
        files = self.table_files(name)
        record_type = CATALOG[name][0]
        return pa.concat_tables([pa.Table.from_batches([], schema=arrow_schema(record_type)),
                                 *(conform(pq.read_table(f), record_type, str(f)) for f in files)])

    def table_files(self, name: str) -> list[Path]:
        """The Parquet files that together hold a catalog table's snapshot (none for an empty partitioned one)."""
        if name not in CATALOG:
            raise ValueError(f"unknown table {name!r}")
        # The list before the files: a writer lists a partition only once its file is in place, and drops a partition
        # from the list before its file; a file gone while the list still names it is missing, not being written.
        listed = self._listed_parts(name) if name in PARTITIONS else None
        for _ in range(100):  # a retry only when a write emptied a partition meanwhile
            files = self._published_files(name)
            missing = sorted((listed or set()) - {file.stem.removeprefix("part-") for file in files})
            if not missing:
                return files
            now = self._listed_parts(name)
            if now == listed:
                raise UnreadableParquet(self._part_file(name, missing[0]), f"missing: {len(missing)} of the "
                                        f"{len(listed)} partitions of the {name} table that hold rows")
            listed = now
        raise UserError(f"{self.root / 'tables' / name}: its partitions kept changing while they were read; retry")

    def _published_files(self, name: str) -> list[Path]:
        """A table's snapshot files as they lie, whatever its partition list says (what repair starts from)."""
        if name in PARTITIONS:
            return sorted((self.root / "tables" / name).glob("part-[0-9a-f][0-9a-f].parquet"))
        return [self.root / "tables" / f"{name}.parquet"]

    def _table_sql(self, name: str, files: list[Path]) -> str:
        """A DuckDB table expression reading a catalog table's snapshot, its `table_files`; a partitioned one is read
        by a glob, so a view made of it sees partitions published later (a table empty now reads as no rows of its
        schema)."""
        if name in PARTITIONS and files:
            return f"read_parquet({_sql_string(self.root / 'tables' / name / 'part-*.parquet')})"
        if name in PARTITIONS:
            columns = ", ".join(f'NULL::{_SQL_TYPES[f.type]} AS "{f.name}"' for f in arrow_schema(CATALOG[name][0]))
            return f"(SELECT {columns} LIMIT 0)"
        return f"read_parquet({_sql_list(files)})"

    def journal_path(self, name: str) -> Path:
        """Where a journal (votes, ratings) lives."""
        return self.root / "journal" / f"{name}.jsonl"

    def connect(self, journals: bool = True) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with a view per catalog table and per journal (votes, ratings).

        Catalog views read the snapshots lazily, so each query sees the latest published state (a partitioned table
        that had no rows when the connection was made stays empty on it). A journal's view
        scans its sealed segments' Parquet twins lazily (only the columns a query needs) and the live segment as
        read now. `journals=False`: catalog views only, for queries of clips or scores (the live journal segments
        are parsed as the connection is made, up to 16 MiB of JSON each).
        """
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # long scans must not draw on the commands' output
        for name in CATALOG:
            files = self.table_files(name)  # once: it reads the partition list and lists the folder
            _create_view(con, f"CREATE VIEW {name} AS SELECT * FROM {self._table_sql(name, files)}", files)
        if journals:
            for name, record_type in JOURNALS.items():
                journal_view(con, name, *journal_parts(self.journal_path(name), record_type))
        return con


def media_path(sha256: str, suffix: str) -> str:
    """The campaign path of content-addressed media: media/<sha[:2]>/<sha><suffix>."""
    return f"media/{sha256[:2]}/{sha256}{suffix}"


def _write_json(path: Path, value: Any) -> None:
    """Replace a small JSON file of the campaign atomically, private to its owner."""
    written = path.with_name(f".{path.name}.{_writer_id()}")
    fd = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with open(fd, "w") as f:
        f.write(json.dumps(value) + "\n")
    fsync_replace(written, path)


def journal_view(con: duckdb.DuckDBPyConnection, name: str, twins: list[Path], live: pa.Table) -> None:
    """Make `name` in `con` a view of a journal: its sealed segments' twins, then its live records."""
    con.register(f"{name}_live", live)
    sealed = (f"SELECT * FROM read_parquet({_sql_list(twins)}) UNION ALL " if twins else "")
    _create_view(con, f"CREATE OR REPLACE VIEW {name} AS {sealed}SELECT * FROM {name}_live", twins)


def _create_view(con: duckdb.DuckDBPyConnection, sql: str, files: list[Path]) -> None:
    """Run a CREATE VIEW over Parquet `files`; where DuckDB cannot, pyarrow names the file it cannot read (DuckDB's
    error may shorten the path or name none)."""
    try:
        con.execute(sql)
    except duckdb.Error:
        require_readable(files)
        raise
