"""Reading an ingest manifest (CSV or JSONL) into rows; each bad row becomes a message, not an exception.

Columns: condition_id, clip, reference_image, audio (required); pose, text, generator,
generator_version, seed, params (optional; params is a JSON object). Relative paths resolve
against the manifest's folder.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_schemas import UserError
from data_schemas.records import ID_PATTERN

REQUIRED = ("condition_id", "clip", "reference_image", "audio")
_PATH_COLUMNS = ("clip", "reference_image", "audio", "pose")


@dataclass(frozen=True)
class ManifestRow:
    """One clip to ingest, with absolute paths."""

    line: int
    condition_id: str
    clip: Path
    reference_image: Path
    audio: Path
    pose: Path | None = None
    text: str | None = None
    generator: str = "external"
    generator_version: str = ""
    seed: int | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowProblem:
    """Why one manifest line was not ingested."""

    line: int
    file: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.file}: {self.reason}"


def read_manifest(path: Path) -> tuple[list[ManifestRow], list[RowProblem]]:
    """Parse a manifest; whole-file problems raise UserError, row problems are returned."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: a folder; give the manifest file in it (.csv or .jsonl)")
    if not path.is_file():
        raise UserError(f"{path}: manifest not found; check the path")
    raw = path.read_bytes()
    # surrogateescape keeps undecodable bytes visible per row instead of failing the whole file.
    text = raw.decode("utf-8", errors="surrogateescape")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records = _csv_records(path, text)
    elif suffix in (".jsonl", ".ndjson"):
        records = _jsonl_records(path, text)
    else:
        raise UserError(f"{path}: unknown manifest type {suffix!r}; use .csv or .jsonl")
    if not records:
        raise UserError(f"{path}: no rows; a manifest has one line per clip")
    rows, problems = [], []
    for line, record in records:
        if isinstance(record, RowProblem):
            problems.append(record)
            continue
        outcome = _row(path.parent, line, record)
        (problems if isinstance(outcome, RowProblem) else rows).append(outcome)
    return rows, problems


def _csv_records(path: Path, text: str) -> list[tuple[int, dict | RowProblem]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _check_columns(path, reader.fieldnames or [])
    out = []
    for record in reader:
        line = reader.line_num
        if None in record:
            out.append((line, RowProblem(line, str(record.get("clip") or "-"),
                                         "more fields than the header; quote values containing commas")))
            continue
        out.append((line, {k: v for k, v in record.items() if v not in (None, "")}))
    return out


def _jsonl_records(path: Path, text: str) -> list[tuple[int, dict | RowProblem]]:
    out, columns = [], set()
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError as exc:
            out.append((line, RowProblem(line, "-", f"not valid JSON ({exc.msg}); fix the line")))
            continue
        if not isinstance(record, dict):
            out.append((line, RowProblem(line, "-", "not a JSON object; write one object per line")))
            continue
        columns.update(record)
        out.append((line, {k: v for k, v in record.items() if v not in (None, "")}))
    if out and not columns:
        raise UserError(f"{path}: no usable rows; write one JSON object per line")
    _check_columns(path, columns or REQUIRED)
    return out


def _check_columns(path: Path, columns) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; a manifest needs {', '.join(REQUIRED)}"
        )


def _row(base: Path, line: int, record: dict) -> ManifestRow | RowProblem:
    clip_name = str(record.get("clip", "-"))
    for key, value in record.items():
        if isinstance(value, str) and re.search(r"[\udc80-\udcff]", value):
            return RowProblem(line, clip_name.encode("utf-8", "replace").decode(),
                              f"{key} is not valid UTF-8; save the manifest as UTF-8")
    for key in REQUIRED:
        if key not in record:
            return RowProblem(line, clip_name, f"{key} is empty; fill it in")
    condition_id = str(record["condition_id"])
    if not re.fullmatch(ID_PATTERN, condition_id):
        return RowProblem(line, clip_name, f"condition_id {condition_id!r} must be letters, digits, '.', '_', '-'")
    paths: dict[str, Path | None] = {}
    for key in _PATH_COLUMNS:
        value = record.get(key)
        if value is None:
            paths[key] = None
            continue
        if re.search(r"\s", str(value)):
            return RowProblem(line, str(value), f"{key} path contains spaces; rename the file without spaces")
        path = Path(str(value)).expanduser()
        paths[key] = path if path.is_absolute() else base / path
    try:
        seed = int(record["seed"]) if "seed" in record else None
    except (TypeError, ValueError):
        return RowProblem(line, clip_name, f"seed {record['seed']!r} is not a whole number")
    params = record.get("params", {})
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except json.JSONDecodeError:
            return RowProblem(line, clip_name, "params is not valid JSON; write a JSON object")
    if not isinstance(params, dict):
        return RowProblem(line, clip_name, "params must be a JSON object")
    generator = str(record.get("generator", "external"))
    if not re.fullmatch(ID_PATTERN, generator):
        return RowProblem(line, clip_name, f"generator {generator!r} must be letters, digits, '.', '_', '-'")
    return ManifestRow(
        line=line,
        condition_id=condition_id,
        clip=paths["clip"],
        reference_image=paths["reference_image"],
        audio=paths["audio"],
        pose=paths["pose"],
        text=str(record["text"]) if "text" in record else None,
        generator=generator,
        generator_version=str(record.get("generator_version", "")),
        seed=seed,
        params=params,
    )
