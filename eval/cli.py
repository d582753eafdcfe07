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


@app.command()
def report(
    dataset: str = typer.Option(..., help="Folder from `pairs export` (with a heldout split) or a Hub dataset id."),
    policy: Path = typer.Option(..., help="Model folder from `train dpo`."),
    out: Path = typer.Option(..., help="Folder for report.html, metrics.json, plots and samples/."),
    reference: str = typer.Option("embedded", help="Reference model folder, or embedded (the shipped one)."),
    sft: Path | None = typer.Option(None, help="Model folder from `train sft`, compared too."),
    campaign: Path | None = typer.Option(None, help="Campaign the pairs came from: auto-scores vs humans, α."),
    samples: int = typer.Option(4, min=1, help="Samples per held-out condition and model."),
    conditions: int | None = typer.Option(None, min=1, help="Held-out conditions to sample (default: all)."),
    seed: int = typer.Option(0, help="First sampling seed; also seeds the noise of the implicit reward."),
    beta: float = typer.Option(2500.0, help="β of the implicit reward margins (accuracy does not depend on it)."),
    draws: int = typer.Option(8, min=1, help="Noise/timestep draws per held-out pair."),
    steps: int = typer.Option(20, min=1, help="Sampling steps."),
    guidance: float = typer.Option(2.0, help="Classifier-free guidance of the samples."),
    scorers: str = typer.Option("sync,identity,expression,motion,quality", help="Scorers for the samples."),
    syncnet_weights: Path | None = typer.Option(None, help="syncnet_v2.model; default: the embedded SyncNet."),
    arcface_model: Path | None = typer.Option(None, help="insightface model pack or .onnx; default: dlib."),
) -> None:
    """Held-out evaluation: implicit-reward accuracy, generation win rates with CIs, auto-scores vs humans."""
    from eval.report import ReportOptions, build_report

    metrics = build_report(ReportOptions(
        dataset=dataset, policy=policy, out=out, reference=reference, sft=sft, campaign=campaign, samples=samples,
        conditions=conditions, seed=seed, beta=beta, draws=draws, steps=steps, guidance=guidance,
        scorers=[s.strip() for s in scorers.split(",") if s.strip()], syncnet_weights=syncnet_weights,
        arcface_model=arcface_model))
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
    console.print(f"report: {out / 'report.html'}; metrics: {out / 'metrics.json'}")


def main() -> None:
    """Console entry point of `evaluate`."""
    run(app, "evaluate")
