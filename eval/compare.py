"""Two evaluation runs' metrics side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from data_schemas import UserError


def flatten(metrics: Any, prefix: str = "") -> dict[str, float]:
    """Nested JSON → {'a/b/c': number}; only numbers are kept (booleans and text are not metrics)."""
    out: dict[str, float] = {}
    if isinstance(metrics, dict):
        for key, value in metrics.items():
            out.update(flatten(value, f"{prefix}{key}/"))
    elif isinstance(metrics, (int, float)) and not isinstance(metrics, bool):
        out[prefix.rstrip("/")] = float(metrics)
    return out


def load_metrics(run: Path) -> dict[str, float]:
    """The flattened metrics.json of a run folder (or of the file itself)."""
    path = Path(run)
    path = path / "metrics.json" if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"{path}: no metrics.json; pass a folder written by `evaluate report`")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not text; pass the metrics.json `evaluate report` wrote") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); regenerate the report") from None
    if not isinstance(metrics, dict) or "schema" not in metrics:
        raise UserError(f"{path}: not the metrics.json of `evaluate report` (no schema); pass a report's folder")
    return flatten(metrics)


def side_by_side(a: dict[str, float], b: dict[str, float]) -> list[tuple[str, float | None, float | None, float | None]]:
    """(metric, A, B, B − A) for every metric of either run, in A's order then B's extras."""
    keys = list(a) + [k for k in b if k not in a]
    return [(k, a.get(k), b.get(k), b[k] - a[k] if k in a and k in b else None) for k in keys]
