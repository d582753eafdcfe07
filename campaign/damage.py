"""A Parquet file a library could not read (damaged, cut short, deleted): which one, and how to get it back.

The readers meet such a file deep inside pyarrow or DuckDB (a view over a table's partitions, a journal's
sealed twins), so the commands recognise it once, where they turn failures into one line.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import duckdb
import pyarrow as pa

_QUOTED_PARQUET = re.compile(r"""["']([^"'\n]+\.parquet)["']""")
_LONGEST_PATH = 4096


def unreadable_parquet(exc: BaseException) -> str | None:
    """One line naming the Parquet file `exc` failed on and the fix; None when it is no such failure."""
    if not isinstance(exc, (pa.ArrowException, duckdb.Error, OSError)):
        return None
    text = str(exc).strip()
    path = _named_parquet(exc, text)
    if path is None:
        return None
    if isinstance(exc, FileNotFoundError) and not path.exists():
        detail = "missing"
    else:
        detail = (text.splitlines() or [type(exc).__name__])[0].replace(f"'{path}'", "it").replace(f'"{path}"', "it")
    return f"{path}: cannot read it ({detail}); {_remedy(path)}"


def _named_parquet(exc: BaseException, text: str) -> Path | None:
    """The .parquet file the error names: its filename, else the longest text before a '.parquet' in the message
    that is a file (paths may hold quotes and spaces), else a quoted one that is gone."""
    filename = getattr(exc, "filename", None)
    if filename and str(filename).endswith(".parquet"):
        return Path(filename)
    for match in re.finditer(r"\.parquet\b", text):
        end = match.end()
        for start in range(max(0, end - _LONGEST_PATH), end - len(".parquet")):
            if os.path.isfile(text[start:end]):
                return Path(text[start:end])
    found = _QUOTED_PARQUET.search(text)
    if found:
        return Path(found.group(1))
    return Path(text) if text.endswith(".parquet") and "\n" not in text else None  # pyarrow: FileNotFoundError(path)


def _remedy(path: Path) -> str:
    """How to get a campaign's derived file back from what it was made of; other files only the user has."""
    root = next((folder for folder in path.parents if (folder / "campaign.json").is_file()), None)
    inside = path.relative_to(root).parts if root is not None else ()
    if inside[:1] == ("tables",):
        return (f"this is a table snapshot: republish the campaign's tables from its catalog with "
                f"`pairs repair --campaign {shlex.quote(str(root))}`")
    if inside[:1] == ("journal",) and len(inside) == 3 and path.name.startswith("segment-"):
        return (f"this is a sealed journal segment's twin: delete it, and {path.with_suffix('.jsonl').name} "
                "beside it is read instead")
    if inside[:1] == ("shards",):
        return (f"this is a sharded run's part, not merged yet: delete its folder {shlex.quote(str(path.parent))} "
                "and run the command again (it redoes that part's work)")
    return "check the path; if it is an input, restore it from a backup or write it again"
