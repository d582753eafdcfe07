"""How a typed record becomes an Arrow schema, a table, and a list of validation errors.

A record is a frozen dataclass. Its Arrow schema is derived from its type hints, so a column is
written down exactly once: in the dataclass. Constraints live in field metadata (see `spec`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import types
import typing
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

import pyarrow as pa

from data_schemas.errors import UserError

R = TypeVar("R")

_SCALARS: dict[type, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    datetime: pa.timestamp("us", tz="UTC"),
}
_META_RECORD = b"portrait_dpo.record"
_META_VERSION = b"portrait_dpo.schema_version"


def spec(
    doc: str,
    *,
    pattern: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    default: Any = dataclasses.MISSING,
    factory: typing.Callable[[], Any] | None = None,
) -> Any:
    """Declare a record field with its one-line meaning and its constraints."""
    metadata = {"doc": doc, "pattern": pattern, "minimum": minimum, "maximum": maximum}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class _Column:
    name: str
    arrow_type: pa.DataType
    nullable: bool
    python_type: Any  # the non-None part of the hint
    choices: tuple[str, ...] | None
    is_json: bool
    metadata: typing.Mapping[str, Any]


def _arrow_type(hint: Any) -> pa.DataType:
    """A scalar, or a list of them, nested to any depth (spans as list[list[float]])."""
    if typing.get_origin(hint) is list:
        return pa.list_(_arrow_type(typing.get_args(hint)[0]))
    return _SCALARS[hint]


@functools.cache  # a record type's columns never change; computing them reads type hints (slow)
def _columns(record_type: type) -> tuple[_Column, ...]:
    hints = typing.get_type_hints(record_type)
    columns = []
    for f in dataclasses.fields(record_type):
        hint, nullable = hints[f.name], False
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            nullable, hint = True, args[0]
        choices, is_json, origin = None, False, typing.get_origin(hint)
        if origin is Literal:
            choices, arrow_type = tuple(typing.get_args(hint)), pa.string()
        elif origin is dict:
            is_json, arrow_type = True, pa.string()  # free-form mappings are stored as JSON text
        else:
            arrow_type = _arrow_type(hint)
        columns.append(_Column(f.name, arrow_type, nullable, hint, choices, is_json, f.metadata))
    return tuple(columns)


@functools.cache
def arrow_schema(record_type: type) -> pa.Schema:
    """The Arrow schema of a record type, tagged with the record's name and schema version."""
    fields = [
        pa.field(c.name, c.arrow_type, nullable=c.nullable, metadata={"doc": c.metadata.get("doc", "")})
        for c in _columns(record_type)
    ]
    return pa.schema(
        fields,
        metadata={_META_RECORD: record_type.__name__, _META_VERSION: str(record_type.SCHEMA_VERSION)},
    )


def validate(record: Any) -> list[str]:
    """Every problem with one record, as readable sentences; empty when the record is valid."""
    name = type(record).__name__
    errors = []
    for c in _columns(type(record)):
        value = getattr(record, c.name)
        where = f"{name}.{c.name}"
        if value is None:
            if not c.nullable:
                errors.append(f"{where} is required")
            continue
        problem = _value_problem(c, value)
        if problem:
            errors.append(f"{where}: {problem}")
    return errors


def _value_problem(c: _Column, value: Any) -> str | None:
    expected = dict if c.is_json else (str if c.choices else c.python_type)
    if typing.get_origin(expected) is list:
        expected = list
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return f"expected {getattr(expected, '__name__', expected)}, got {type(value).__name__} {value!r}"
    if c.choices and value not in c.choices:
        return f"{value!r} is not one of {', '.join(c.choices)}"
    if expected is datetime and value.tzinfo is None:
        return "timestamp must carry a time zone (use UTC)"
    if c.is_json:
        try:
            json.dumps(value)
        except TypeError as exc:
            return f"not JSON-serialisable ({exc})"
    pattern = c.metadata.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        return f"{value!r} does not match {pattern}"
    lo, hi = c.metadata.get("minimum"), c.metadata.get("maximum")
    if isinstance(value, (int, float)) and value != value:
        return "is NaN"
    if lo is not None and value < lo:
        return f"{value!r} is below the minimum {lo}"
    if hi is not None and value > hi:
        return f"{value!r} is above the maximum {hi}"
    return None


def require_valid(record: R, where: str) -> R:
    """Return the record, or raise UserError listing its problems prefixed by `where`."""
    errors = validate(record)
    if errors:
        raise UserError(f"{where}: " + "; ".join(errors))
    return record


def to_table(records: typing.Iterable[Any], record_type: type) -> pa.Table:
    """Records → Arrow table with the record's schema."""
    columns = _columns(record_type)
    data: dict[str, list] = {c.name: [] for c in columns}
    for r in records:
        for c in columns:
            value = getattr(r, c.name)
            data[c.name].append(json.dumps(value, sort_keys=True) if c.is_json and value is not None else value)
    return pa.Table.from_pydict(data, schema=arrow_schema(record_type))


def to_rows(records: typing.Iterable[Any]) -> list[dict[str, Any]]:
    """Records → JSON-ready dicts (timestamps as ISO 8601), the journal's line format."""
    rows = []
    for r in records:
        row = {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = value.astimezone(timezone.utc).isoformat()
        rows.append(row)
    return rows


def from_table(table: pa.Table, record_type: type[R]) -> list[R]:
    """Arrow table → records, checking the table carries every column the record needs."""
    conform(table, record_type, "table")
    columns = _columns(record_type)
    out = []
    for row in table.select([c.name for c in columns]).to_pylist():
        for c in columns:
            if c.is_json and row[c.name] is not None:
                row[c.name] = json.loads(row[c.name])
        out.append(record_type(**row))
    return out


def conform(table: pa.Table, record_type: type, source: str) -> pa.Table:
    """Cast `table` to the record's schema, or raise UserError naming the source and what is missing."""
    schema = arrow_schema(record_type)
    version = (table.schema.metadata or {}).get(_META_VERSION)
    if version is not None and int(version) > record_type.SCHEMA_VERSION:
        raise UserError(
            f"{source}: {record_type.__name__} schema version {int(version)} is newer than this "
            f"portrait-dpo understands ({record_type.SCHEMA_VERSION}); upgrade portrait-dpo"
        )
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise UserError(f"{source}: missing {record_type.__name__} columns {', '.join(missing)}")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:  # ValueError: a null where none may be
        raise UserError(f"{source}: columns do not fit the {record_type.__name__} schema ({exc})") from None
