"""`pairs`: make, ingest and inspect candidate clips and the preference pairs built from them."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from annotate.cli_app import new_app, run
from annotate.store import Campaign
from data_schemas import UserError
from pairs.ingest import ingest_rows
from pairs.manifest import read_manifest
from pairs.world.build import DEGRADATIONS, build_world

app = new_app("Make, ingest and inspect candidate clips and preference pairs.")
console = Console()


@app.command()
def world(
    out: Path = typer.Option(..., help="Folder to render the world into (a manifest.csv is written there)."),
    conditions: int = typer.Option(8, min=1, help="Number of conditions (people × utterances)."),
    seed: int = typer.Option(0, help="World seed: the same seed renders the same world."),
    size: int = typer.Option(128, min=32, max=512, help="Frame size in pixels (even)."),
    seconds: float = typer.Option(4.0, min=0.5, max=60.0, help="Clip length in seconds."),
    variants: str = typer.Option(",".join(DEGRADATIONS), help="Degraded variants to render besides the in-sync clip "
                                 f"(comma-separated from {', '.join(DEGRADATIONS)}; empty for none)."),
    shift_frames: int = typer.Option(4, min=1, help="How many frames the mouth lags the audio in 'shift' clips."),
) -> None:
    """Render procedural talking-portrait conditions and clips (25 fps, 16 kHz)."""
    chosen = tuple(v for v in variants.split(",") if v)
    unknown = [v for v in chosen if v not in DEGRADATIONS]
    if unknown:
        raise UserError(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(DEGRADATIONS)}")
    if size % 2:
        raise UserError(f"--size {size}: H.264 needs an even size; use {size + 1}")
    manifest = build_world(out, conditions, seed, size, seconds, chosen, shift_frames)
    console.print(f"world: {conditions} conditions × {1 + len(chosen)} clips → {manifest}")


@app.command()
def ingest(
    manifest: Path = typer.Argument(..., help="CSV or JSONL manifest; relative paths resolve against its folder."),
    campaign: Path = typer.Option(..., help="Campaign folder (created when it does not exist)."),
    allow_silent: bool = typer.Option(False, help="Accept clips without an audio track."),
) -> None:
    """Add clips made elsewhere to a campaign. Exit status 1 when any row was refused."""
    rows, unparsed = read_manifest(manifest)
    store = Campaign.open(campaign, create=not (campaign / "campaign.json").exists())
    report = ingest_rows(store, rows, require_audio=not allow_silent)
    problems = sorted(unparsed + report.problems, key=lambda p: p.line)
    for problem in problems:
        console.print(f"[red]refused[/red] {problem}", highlight=False, soft_wrap=True)
    table = Table(title=f"ingest {manifest}")
    for column in ("rows", "ingested", "already present", "refused"):
        table.add_column(column, justify="right")
    table.add_row(str(len(rows) + len(unparsed)), str(report.ingested),
                  str(report.unchanged), str(len(problems)))
    console.print(table)
    if problems:
        raise typer.Exit(1)


@app.command()
def summary(campaign: Path = typer.Option(..., help="Campaign folder.")) -> None:
    """Print what a campaign holds: conditions, clips per generator, scores, votes."""
    store = Campaign.open(campaign)
    con = store.connect()
    totals = Table(title=f"campaign {campaign}")
    totals.add_column("table")
    totals.add_column("rows", justify="right")
    for name in ("conditions", "clips", "scores", "annotators", "votes", "ratings"):
        totals.add_row(name, str(con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]))
    console.print(totals)
    per_condition = Table(title="clips per condition")
    for column in ("condition", "clips", "generators", "fps", "size", "seconds"):
        per_condition.add_column(column)
    rows = con.execute("""
        SELECT condition_id, count(*), string_agg(DISTINCT generator, ','), any_value(fps),
               any_value(width) || 'x' || any_value(height), round(avg(duration), 2)
        FROM clips GROUP BY condition_id ORDER BY condition_id
    """).fetchall()
    for row in rows:
        per_condition.add_row(*(f"{v:g}" if isinstance(v, float) else str(v) for v in row))
    console.print(per_condition)


def main() -> None:
    """Console entry point of `pairs`."""
    run(app, "pairs")
