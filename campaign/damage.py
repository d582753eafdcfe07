"""A Parquet file a library could not read (damaged, cut short, deleted): which one, and how to get it back.

The readers meet such a file deep inside pyarrow or DuckDB (a view over a table's partitions, a journal's
sealed twins), so the commands recognise it once, where they turn failures into one line.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# What pyarrow and DuckDB say when a Parquet file cannot be read, not when one cannot be written or a query is wrong.
_READ_FAILURES = ("could not open parquet input source", "parquet magic bytes", "parquet file size is",
                  "too small to be a parquet file", "no magic bytes found", "no files found that match the pattern",
                  "deserialize thrift", "variable-length int", "tprotocolexception", "don't know what type",
                  "invalid data")
_QUOTED_PARQUET = re.compile(r"""["']([^"'\n]+\.parquet)["']""")
_MENTIONS = 8  # '.parquet' mentions looked at in one message
_PATH_START = re.compile(r"""(?:^|(?<=[\s'"(=]))\S""")  # where a path in a message may begin


class UnreadableParquet(Exception):
    """A Parquet file that could not be read, named where the library's own error does not name it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


def require_readable(files: list[Path]) -> None:
    """UnreadableParquet for the first of `files` whose footer pyarrow cannot read: where DuckDB failed on a view
    over several files, its error may shorten the path or name none."""
    for file in files:
        try:
            pq.read_metadata(file)
        except FileNotFoundError:
            raise UnreadableParquet(file, "missing") from None
        except (OSError, pa.ArrowException) as exc:
            raise UnreadableParquet(file, (str(exc).strip().splitlines() or ["unreadable"])[0]) from None


def read_whole(parquet: Path) -> pa.Table | None:
    """A Parquet file's rows as pyarrow reads them, or None when it cannot (damaged, cut short, gone)."""
    try:
        return pq.read_table(parquet)
    except (OSError, pa.ArrowException):
        return None


def unreadable_parquet(exc: BaseException) -> str | None:
    """One line naming the Parquet file `exc` failed to read and the fix; None when it is no such failure."""
    if isinstance(exc, UnreadableParquet):
        return _line(exc.path, exc.reason)
    text = str(exc).strip()
    if isinstance(exc, FileNotFoundError):
        path = Path(exc.filename or text)
        return _line(path, "missing") if path.suffix == ".parquet" and _campaign_of(path) else None
    # DuckDB's error class only if DuckDB was loaded (else none of its errors exists): every command imports this
    # module, and `train` would load DuckDB for nothing.
    duckdb_error = getattr(sys.modules.get("duckdb"), "Error", OSError)
    if not isinstance(exc, (pa.ArrowException, duckdb_error, OSError)) or not _says_unreadable(text):
        return None
    path = _named_parquet(text)
    detail = (text.splitlines() or [type(exc).__name__])[0]
    if path is None:
        return (f"a Parquet file could not be read ({detail}); if it is a campaign's, `pairs repair --campaign DIR` "
                "writes its tables again and drops damaged journal twins")
    return _line(path, detail.replace(f"'{path}'", "it").replace(f'"{path}"', "it"))


def _says_unreadable(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in _READ_FAILURES)


def repair_command(root: Path) -> str:
    """The command that writes a campaign's table snapshots again from its catalog, as the messages quote it."""
    return f"`pairs repair --campaign {shlex.quote(str(root))}`"


def _line(path: Path, detail: str) -> str:
    return f"{path}: cannot read it ({detail}); {_remedy(path)}"


def _named_parquet(text: str) -> Path | None:
    """The .parquet file a message names: the longest path ending at a '.parquet' that is a file (paths may hold
    quotes and spaces), else a quoted one that is gone."""
    for mention in list(re.finditer(r"\.parquet\b", text))[:_MENTIONS]:
        before = text[: mention.end()]
        for start in _PATH_START.finditer(before):  # longest first
            if os.path.isfile(before[start.start():]):
                return Path(before[start.start():])
    found = _QUOTED_PARQUET.search(text)
    return Path(found.group(1)) if found else None


def _campaign_of(path: Path) -> Path | None:
    """The campaign folder (holding campaign.json) a file lies in, or None."""
    return next((folder for folder in path.parents if (folder / "campaign.json").is_file()), None)


def _remedy(path: Path) -> str:
    """How to get a campaign's derived file back from what it was made of; other files only the user has."""
    root = _campaign_of(path)
    inside = path.relative_to(root).parts if root is not None else ()
    if inside[:1] == ("tables",):
        return f"this is a table snapshot: republish the campaign's tables from its catalog with {repair_command(root)}"
    if inside[:1] == ("journal",) and len(inside) == 3 and path.name.startswith("segment-"):
        if not path.with_suffix(".jsonl").is_file():
            return (f"this is a sealed journal segment's twin, and its JSON lines {path.with_suffix('.jsonl').name} "
                    "are gone too: restore either from the copy or backup the campaign came from")
        return (f"this is a sealed journal segment's twin: delete it, and {path.with_suffix('.jsonl').name} "
                "beside it is read instead")
    if inside[:1] == ("shards",) and len(inside) > 2:
        return (f"this is a part of a sharded `pairs {inside[1]}` run, not merged yet: delete its folder "
                f"{shlex.quote(str(path.parent))} and run `pairs {inside[1]}` again (it redoes that part's work)")
    return "restore it from a backup, or write it again"
