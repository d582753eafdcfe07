"""`evaluate`: held-out evaluation of trained models and comparison of runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from annotate.cli_app import new_app, run
from eval.compare import load_metrics, side_by_side

app = new_app("Evaluate trained models on held-out preferences, and compare runs.")
console = Console()


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="First run folder (or its metrics.json)."),
    run_b: Path = typer.Argument(..., help="Second run folder (or its metrics.json)."),
) -> None:
    """Put two runs' metrics side by side, with B − A."""
    table = Table(title=f"{run_a} vs {run_b}")
    for column, justify in (("metric", "left"), ("A", "right"), ("B", "right"), ("B − A", "right")):
        table.add_column(column, justify=justify)
    for metric, a, b, delta in side_by_side(load_metrics(run_a), load_metrics(run_b)):
        table.add_row(metric, *("—" if v is None else f"{v:.4g}" for v in (a, b)),
                      "" if delta is None else f"{delta:+.4g}")
    console.print(table)


def main() -> None:
    """Console entry point of `evaluate`."""
    run(app, "evaluate")
