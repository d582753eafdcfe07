"""A Parquet file a library could not read (damaged, cut short, deleted): which one, and how to get it back.

The readers meet such a file deep inside pyarrow or DuckDB (a view over a table's partitions, a journal's
sealed twins), so the commands recognise it once, where they turn failures into one line.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa

_QUOTED_PARQUET = re.compile(r"""["']([^"'\n]+\.parquet)["']""")


def unreadable_parquet(exc: BaseException) -> str | None:
    """One line naming the Parquet file `exc` failed on and the fix; None when it is no such failure."""
    if not isinstance(exc, (pa.ArrowException, duckdb.Error, FileNotFoundError)):
        return None
    text = str(exc)
    named = getattr(exc, "filename", None) or text.strip()
    found = _QUOTED_PARQUET.search(text)
    path = Path(found.group(1) if found else named)
    if path.suffix != ".parquet":
        return None
    detail = "missing" if isinstance(exc, FileNotFoundError) else _QUOTED_PARQUET.sub("it", text.strip().splitlines()[0])
    return f"{path}: cannot read it ({detail}); {_remedy(path)}"


def _remedy(path: Path) -> str:
    """How to get a campaign's derived file back from what it was made of; other files only the user has."""
    parts = path.parts
    if "tables" in parts:
        root = Path(*parts[: len(parts) - 1 - parts[::-1].index("tables")])  # the folder holding tables/
        return (f"this is a table snapshot: republish the campaign's tables from its catalog with "
                f"`pairs repair --campaign {root}`")
    if path.parent.parent.name == "journal" and path.name.startswith("segment-"):
        return (f"this is a sealed journal segment's twin: delete it, and {path.with_suffix('.jsonl').name} "
                "beside it is read instead")
    return "restore it from a backup, or write it again"
