"""`evaluate`: held-out evaluation of trained models and comparison of runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli_kit.app import new_app, run
from cli_kit.options import command, save_run_config
from eval.compare import load_metrics, side_by_side
from eval.report import ReportOptions

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


def report(options: ReportOptions) -> None:
    """Held-out evaluation: implicit-reward accuracy, generation win rates with CIs, auto-scores vs humans."""
    from eval.report import build_report

    save_run_config(options.out, options)
    metrics = build_report(options)
    table = Table(title="held-out evaluation")
    for column in ("model", "implicit-reward accuracy", "sync/lse_c mean", "win rate vs reference (95% CI)"):
        table.add_column(column)
    comparisons = metrics["generation"]["comparisons"]
    for name in metrics["generation"]["means"]:
        accuracy = metrics["implicit_reward"].get(name, {}).get("accuracy")
        sync = metrics["generation"]["means"][name].get("sync/lse_c")
        versus = comparisons.get(f"{name}_vs_reference", {}).get("sync/lse_c", {})
        rate, (low, high) = versus.get("win_rate"), versus.get("win_rate_ci", (None, None))
        table.add_row(name, "–" if accuracy is None else f"{accuracy:.3f}",
                      "–" if sync is None else f"{sync:.3f}",
                      "–" if rate is None else f"{rate:.2f} [{low:.2f}, {high:.2f}]")
    console.print(table)
    for line in metrics["verdict"]["headline"]:
        console.print(line, markup=False)  # CIs are written [low, high], which rich would read as markup
    console.print(f"report: {options.out / 'report.html'}; metrics: {options.out / 'metrics.json'}")


command(app, ReportOptions, report, "report")


def main() -> None:
    """Console entry point of `evaluate`."""
    run(app, "evaluate")
