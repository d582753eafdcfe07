"""`pairs`: make, ingest and inspect candidate clips and the preference pairs built from them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.table import Table

from annotate.cli_app import new_app, run
from annotate.store import Campaign
from data_schemas import UserError
from pairs.build import BuildOptions, build_pairs
from pairs.generate import Variant, embedded_generator, generate as generate_clips, load_callable
from pairs.ingest import IngestReport, ingest_rows
from pairs.manifest import read_manifest
from pairs.scorers import HIGHER_IS_BETTER, NAMES as SCORER_NAMES
from pairs.stats import campaign_stats
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
    store = Campaign.open(campaign, create=True)
    report = ingest_rows(store, rows, require_audio=not allow_silent)
    _print_report(f"ingest {manifest}", len(rows) + len(unparsed), report, unparsed)


def _print_report(title: str, rows: int, report: IngestReport, unparsed=()) -> None:
    problems = sorted([*unparsed, *report.problems], key=lambda p: p.line)
    for problem in problems:
        console.print(f"[red]refused[/red] {problem}", highlight=False, soft_wrap=True)
    table = Table(title=title)
    for column in ("rows", "ingested", "already present", "refused"):
        table.add_column(column, justify="right")
    table.add_row(str(rows), str(report.ingested), str(report.unchanged), str(len(problems)))
    console.print(table)
    if problems:
        raise typer.Exit(1)


@app.command()
def generate(
    campaign: Path = typer.Option(..., help="Campaign folder (created when it does not exist)."),
    conditions: int = typer.Option(4, min=1, help="Conditions to generate for: the campaign's first, then new "
                                   "embedded-world ones."),
    candidates: int = typer.Option(4, min=1, help="Candidates per condition (seeds SEED … SEED+K-1)."),
    seed: int = typer.Option(0, help="First sampling seed."),
    steps: int = typer.Option(20, min=1, help="Sampling steps of the embedded model."),
    guidance: str = typer.Option("2.0", help="Classifier-free guidance; a comma list (1.5,3) alternates it "
                                 "across candidates."),
    model: str = typer.Option("embedded", help="Model folder from `train pretrain`, or `embedded` (shipped)."),
    pipeline: str | None = typer.Option(None, help="Your own generator as module:callable, called with "
                                        "(GenerationInputs, seed) and returning uint8 [frames, H, W, 3]."),
    device: str = typer.Option("cpu", help="cpu or cuda, for the embedded model."),
    world_seed: int = typer.Option(0, help="Seed of new embedded-world conditions."),
    seconds: float = typer.Option(3.0, min=0.1, help="Audio length of new embedded-world conditions."),
) -> None:
    """Sample K candidates per condition and add them to the campaign (same checks as ingest)."""
    store = Campaign.open(campaign, create=True)
    if pipeline is not None:
        variants = [Variant(load_callable(pipeline), pipeline.replace(":", ".").split(".")[-1], pipeline, {})]
        spec = pipeline
    else:
        try:
            values = [float(g) for g in guidance.split(",")]
        except ValueError:
            raise UserError(f"--guidance {guidance!r}: give numbers, e.g. 2.0 or 1.5,3") from None
        variants = []
        for value in values:
            generator = embedded_generator(model, steps, value, device)
            variants.append(Variant(generator, "embedded", generator.version,
                                    {"steps": steps, "guidance": value, "model": str(model)}))
        spec = "embedded"
    with tempfile.TemporaryDirectory(prefix="generate-", dir=store.root) as staging:
        report = generate_clips(store, variants, spec, conditions, candidates, seed, Path(staging), world_seed,
                                seconds)
    _print_report(f"generate → {campaign}", conditions * candidates, report)


@app.command()
def build(
    campaign: Path = typer.Option(..., help="Campaign folder."),
    out: Path = typer.Option(..., help="Parquet file to write the pairs to."),
    criterion: str = typer.Option("overall", help="One criterion, or all."),
    min_votes: int = typer.Option(1, min=1, help="Votes a decision needs (ratings per clip in rating mode)."),
    min_agreement: float = typer.Option(0.0, min=0.0, max=1.0, help="Weighted share agreeing with the decision."),
    ties: str = typer.Option("drop", help="drop: a tie vote counts for neither clip; half: half for each."),
    weighting: str = typer.Option("none", help="Annotator weights: none, gold or dawid-skene."),
    source: str = typer.Option("ab", "--from", help="ab, rating, auto or hybrid."),
    min_gap: float = typer.Option(0.0, min=0.0, help="Rating or auto-score gap a pair needs."),
    heldout: float = typer.Option(0.1, min=0.0, max=0.99, help="Share of conditions held out."),
    seed: int = typer.Option(0, help="Seed of the held-out split."),
    auto_score: str = typer.Option("sync/lse_c", help="scorer/metric for auto pairs and disagreement flags "
                                   "(its better direction is known: lse_d lower, lse_c higher, …)."),
) -> None:
    """Aggregate votes, ratings and auto-scores into win/lose pairs, split by condition."""
    higher = HIGHER_IS_BETTER.get(auto_score)
    if higher is None:
        directed = ", ".join(k for k, v in HIGHER_IS_BETTER.items() if v is not None)
        raise UserError(f"--auto-score {auto_score}: no better direction to rank by; choose one of {directed}")
    options = BuildOptions(criterion=criterion, min_votes=min_votes, min_agreement=min_agreement, ties=ties,
                           weighting=weighting, source=source, min_gap=min_gap, heldout=heldout, seed=seed,
                           auto_score=auto_score, auto_higher_is_better=higher)
    table = build_pairs(Campaign.open(campaign), options)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    counts = Table(title=f"pairs → {out}")
    for column in ("split", "source", "criterion", "pairs", "mean agreement"):
        counts.add_column(column)
    con = duckdb.connect()
    con.register("pairs", table)
    for row in con.execute("SELECT split, source, criterion, count(*), round(avg(agreement), 3) FROM pairs "
                           "GROUP BY ALL ORDER BY ALL").fetchall():
        counts.add_row(*map(str, row))
    console.print(counts)


@app.command()
def stats(
    campaign: Path = typer.Option(..., help="Campaign folder."),
    by: str = typer.Option("generator", help="Bradley–Terry strengths of: generator or seed."),
    bootstrap: int = typer.Option(200, min=10, help="Bootstrap resamples for the 95% intervals."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Agreement (Krippendorff's α), annotator reliability, strengths with 95% CIs, auto-score vs humans."""
    if by not in ("generator", "seed"):
        raise UserError(f"--by {by}: choose generator or seed")
    report = campaign_stats(Campaign.open(campaign), by=by, bootstrap=bootstrap)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    _table("agreement (Krippendorff's α)", ["criterion", "alpha"], list(report["alpha"].items()))
    _table("annotators", ["annotator", "showings", "skips", "tie rate", "agrees with majority", "gold accuracy"],
           [(a["annotator"], a["showings"], a["skips"], a["tie_rate"], a["agreement_with_majority"],
             a["gold_accuracy"]) for a in report["annotators"]])
    _table(f"Bradley–Terry strengths by {by} (overall)", ["name", "strength", "95% CI", "wins", "losses"],
           [(s["name"], s["strength"], f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}]", s["wins"], s["losses"])
            for s in report["strengths"]])
    _table("auto-score predicts the human winner", ["score", "criterion", "pairs", "accuracy", "AUC"],
           [(a["score"], a["criterion"], a["pairs"], a["accuracy"], a["auc"]) for a in report["auto_scores"]])


def _table(title: str, columns: list[str], rows: list[tuple]) -> None:
    table = Table(title=title)
    for i, column in enumerate(columns):  # names stay whole; long free text wraps instead
        table.add_column(column, no_wrap=i < 2, overflow="fold")
    for row in rows:
        table.add_row(*("–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


@app.command()
def export(
    campaign: Path = typer.Option(..., help="Campaign the pairs were built from."),
    pairs: Path = typer.Option(..., help="Parquet file from `pairs build`."),
    to_hf: Path = typer.Option(..., help="Output folder of the Hugging Face dataset."),
    embed_media: bool = typer.Option(False, help="Put media bytes in the dataset instead of copied files."),
    format: str = typer.Option("hf", help="hf (DatasetDict.save_to_disk) or parquet (one file per split)."),
    push_to_hub: str | None = typer.Option(None, help="Also upload to this Hub repository (needs a login)."),
) -> None:
    """Export pairs with their media as a Hugging Face dataset (train / heldout) and a dataset card."""
    # datasets takes seconds to import: only `export` pays for it.
    from pairs.export import export_pairs, push_to_hub as upload

    if format not in ("hf", "parquet"):
        raise UserError(f"--format {format}: choose hf or parquet")
    if not pairs.is_file():
        raise UserError(f"{pairs}: pairs file not found; make it with `pairs build --out {pairs}`")
    try:
        table = pq.read_table(pairs)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user mistake
        raise UserError(f"{pairs}: not a Parquet file ({exc}); make it with `pairs build`") from None
    dataset = export_pairs(Campaign.open(campaign), table, to_hf, embed_media, format == "parquet", str(pairs))
    console.print(f"exported {', '.join(f'{k}: {len(v)}' for k, v in dataset.items())} pairs → {to_hf}")
    if push_to_hub:
        upload(dataset, push_to_hub)
        console.print(f"pushed to {push_to_hub}")


@app.command()
def score(
    campaign: Path = typer.Option(..., help="Campaign folder."),
    scorers: str = typer.Option(",".join(SCORER_NAMES), help="Comma-separated scorers to run."),
    device: str = typer.Option("cpu", help="cpu or cuda (SyncNet)."),
    batch_size: int = typer.Option(16, min=1, help="SyncNet windows per forward pass."),
    precision: str = typer.Option("fp32", help="SyncNet arithmetic: fp32 (equals syncnet_python) or bf16 (faster)."),
    syncnet_weights: Path | None = typer.Option(
        None, help="syncnet_python's syncnet_v2.model (or a `train syncnet` folder); default: the shipped embedded one."),
    arcface_model: Path | None = typer.Option(
        None, help="insightface model pack folder (e.g. buffalo_l) or ArcFace .onnx; default: dlib's offline model."),
) -> None:
    """Score every clip not yet scored by each scorer's current version (cached by clip sha256)."""
    from pairs.score import score_campaign
    from pairs.scorers import ScorerOptions, load_scorers

    store = Campaign.open(campaign)
    options = ScorerOptions(device=device, batch_size=batch_size, precision=precision,
                            syncnet_weights=syncnet_weights, arcface_model=arcface_model)
    ready, unavailable = load_scorers([s.strip() for s in scorers.split(",") if s.strip()], options)
    for name, why in unavailable.items():
        console.print(f"{name}: skipped, {why}")
    for scorer in ready:
        console.print(f"{scorer.name}: version {scorer.version}")
    run_result = score_campaign(store, ready)
    console.print(f"scored: {run_result.scored}; already scored: {run_result.cached} clips; "
                  f"skipped: {run_result.skipped}")
    scores_table(campaign)


@app.command("scores")
def scores_table(campaign: Path = typer.Option(..., help="Campaign folder.")) -> None:
    """Per scorer and metric: clips scored, skipped (with reasons), mean ± sd; then which weights made them."""
    from pairs.score import score_table

    metrics, versions_by_scorer = score_table(Campaign.open(campaign))
    _table(f"scores of {campaign}", ["scorer", "metric", "scored", "skipped", "reasons", "mean", "sd"], metrics)
    for scorer, versions in versions_by_scorer:
        console.print(f"  {scorer}: {versions}", soft_wrap=True)


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
    if store.table("scores").num_rows:
        scores_table(campaign)


def main() -> None:
    """Console entry point of `pairs`."""
    run(app, "pairs")
