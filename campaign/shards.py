"""Result shards: catalog rows that one process of a sharded run wrote, waiting for one merge into the catalog.

Several processes writing the catalog directly would queue on its one-writer lock. Instead each process
writes its rows as parts under `shards/<command>/rank-<K>/`, and one process merges every finished part
in a single transaction, then deletes them. A part is a folder of `<table>.parquet` files that appears
whole (written as `.tmp-…`, renamed when complete), so a killed process leaves finished parts, which the
next merge commits, and at most one torn `.tmp-…` folder, which nothing reads.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable

import pyarrow.parquet as pq

from campaign.store import CATALOG, Campaign, fsync_replace, private_folder
from data_schemas import conform, to_table


def write_part(campaign: Campaign, command: str, rank: int, rows: dict[str, Iterable[Any]]) -> None:
    """Write one finished part of catalog rows ({table: records}) for process `rank` of a `command` run."""
    folder = campaign.root / "shards" / command / f"rank-{rank}"
    name = uuid.uuid4().hex
    tmp = folder / f".tmp-{name}"
    private_folder(tmp)
    for table, records in rows.items():
        written = tmp / f".{table}.parquet"
        pq.write_table(to_table(records, CATALOG[table][0]), written)
        fsync_replace(written, tmp / f"{table}.parquet")
    tmp.rename(folder / name)


def _finished_parts(campaign: Campaign) -> list[Path]:
    """Every finished part under the campaign's shards, of any run and command."""
    return sorted(p for p in (campaign.root / "shards").glob("*/rank-*/*") if p.is_dir() and not p.name.startswith("."))


def merge_shards(campaign: Campaign) -> dict[str, int]:
    """Commit every finished part to the catalog in one transaction, then delete them; returns rows changed per
    table."""
    parts = _finished_parts(campaign)
    changed = campaign.add_tables(
        {path.stem: conform(pq.read_table(path), CATALOG[path.stem][0], str(path)) for path in part.glob("*.parquet")}
        for part in parts)
    for part in parts:
        shutil.rmtree(part)
    return changed
