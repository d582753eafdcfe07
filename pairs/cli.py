"""`pairs`: make, ingest and inspect candidate clips and the preference pairs built from them.

Each command's options are a dataclass's fields (cli_kit.options): one default and one list of choices each.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.table import Table

from campaign.retractions import counted_view
from campaign.store import Campaign
from cli_kit.app import new_app, run
from cli_kit.options import check_choices, command, option
from data_schemas import UserError
from data_schemas.dataset import DEFAULT_MAX_SHARD_SIZE, max_shard_bytes
from pairs.candidates.ingest import IngestReport, ingest_rows
from pairs.candidates.manifest import read_manifest
from pairs.preferences.bradley_terry import missing_prior_note
from pairs.preferences.build import BuildOptions, build_pairs
from pairs.scoring.scorers import Device, ScorerOptions
from pairs.stats import campaign_stats
from world.build import DEGRADATIONS, Degradation, build_world

app = new_app("Make, ingest and inspect candidate clips and preference pairs.")
console = Console()


@dataclass(frozen=True, kw_only=True)
class WorldOptions:
    """`pairs world`."""

    out: Path = option(help="Folder to render the world into (a manifest.csv is written there).")
    conditions: int = option(8, "Number of conditions (people × utterances).", minimum=1)
    seed: int = option(0, "World seed: the same seed renders the same world.")
    size: int = option(128, "Frame size in pixels (even).", minimum=32, maximum=512)
    seconds: float = option(4.0, "Clip length in seconds.", minimum=0.5, maximum=60.0)
    variants: tuple[Degradation, ...] = option(DEGRADATIONS, "Degraded variants to render besides the in-sync "
                                               "clip (empty for none).")
    shift_frames: int = option(4, "How many frames the mouth lags the audio in 'shift' clips.", minimum=1)

    def __post_init__(self) -> None:
        check_choices(self)
        if self.size % 2:
            raise UserError(f"--size {self.size}: H.264 needs an even size; use {self.size + 1}")


def world(options: WorldOptions) -> None:
    """Render procedural talking-portrait conditions and clips (25 fps, 16 kHz)."""
    manifest = build_world(options.out, options.conditions, options.seed, options.size, options.seconds,
                           options.variants, options.shift_frames)
    console.print(f"world: {options.conditions} conditions × {1 + len(options.variants)} clips → {manifest}")


command(app, WorldOptions, world, "world")


@dataclass(frozen=True, kw_only=True)
class IngestOptions:
    """`pairs ingest`."""

    manifest: Path = option(help="CSV or JSONL manifest; relative paths resolve against its folder.", argument=True)
    campaign: Path = option(help="Campaign folder (created when it does not exist).")
    allow_silent: bool = option(False, "Accept clips without an audio track.")


def ingest(options: IngestOptions) -> None:
    """Add clips made elsewhere to a campaign. Exit status 1 when any row was refused."""
    rows, unparsed = read_manifest(options.manifest)
    store = Campaign.open(options.campaign, create=True)
    report = ingest_rows(store, rows, require_audio=not options.allow_silent)
    _print_report(f"ingest {options.manifest}", len(rows) + len(unparsed), report, unparsed)


command(app, IngestOptions, ingest, "ingest")


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


def _campaign_of_each_process(root: Path, create: bool = False) -> Campaign:
    """The campaign, in each process of `accelerate launch` (or this one alone); only the main process prints."""
    from pairs.processes import is_main_process, open_campaign

    console.quiet = not is_main_process()
    return open_campaign(root, create)


@dataclass(frozen=True, kw_only=True)
class GenerateOptions:
    """`pairs generate`."""

    campaign: Path = option(help="Campaign folder (created when it does not exist).")
    conditions: int = option(4, "Conditions to generate for: the campaign's first, then new embedded-world ones.",
                             minimum=1)
    candidates: int = option(4, "Candidates per condition (seeds SEED … SEED+K-1).", minimum=1)
    seed: int = option(0, "First sampling seed.")
    steps: int = option(20, "Sampling steps.", minimum=1)
    guidance: tuple[str, ...] = option(("2.0",), "Classifier-free guidance; several values (1.5,3) alternate "
                                       "across candidates.")
    model: str = option("embedded", "Model folder of any family (train pretrain / dpo / init-model), or embedded.")
    pipeline: str | None = option(None, "Your own generator as module:callable, called with (ConditionInputs, seed) "
                                  "and returning uint8 [frames, H, W, 3].")
    device: Device = option("cpu", "Where the model runs.")
    world_seed: int = option(0, "Seed of new embedded-world conditions.")
    seconds: float = option(3.0, "Audio length of new embedded-world conditions.", minimum=0.1)

    def __post_init__(self) -> None:
        check_choices(self)
        try:
            [float(g) for g in self.guidance]
        except ValueError:
            raise UserError(f"--guidance {','.join(self.guidance)}: give numbers, e.g. 2.0 or 1.5,3") from None


def generate(options: GenerateOptions) -> None:
    """Sample K candidates per condition and add them to the campaign (same checks as ingest); under
    `accelerate launch` the conditions are split over the processes."""
    # The model stack (torch, diffusers) takes seconds to import: only `generate` pays for it.
    from model_families.generator import model_generator
    from pairs.candidates.generate import Variant, generate as generate_clips, load_callable
    from pairs.processes import process_device

    store = _campaign_of_each_process(options.campaign, create=True)
    if options.pipeline is not None:
        name = options.pipeline.replace(":", ".").split(".")[-1]
        variants = [Variant(load_callable(options.pipeline), name, options.pipeline, {})]
        spec = options.pipeline
    else:
        variants = []
        for value in map(float, options.guidance):
            generator = model_generator(options.model, options.steps, value, process_device(options.device))
            variants.append(Variant(generator, generator.model.name, generator.version,
                                    {"steps": options.steps, "guidance": value, "model": str(options.model)}))
        spec = options.model
    with tempfile.TemporaryDirectory(prefix="generate-", dir=store.root) as staging:
        report = generate_clips(store, variants, spec, options.conditions, options.candidates, options.seed,
                                Path(staging), options.world_seed, options.seconds)
    _print_report(f"generate → {options.campaign}", options.conditions * options.candidates, report)


command(app, GenerateOptions, generate, "generate")


@dataclass(frozen=True, kw_only=True)
class BuildCommand(BuildOptions):
    """`pairs build`: the build options, and where the campaign and the pairs file are."""

    campaign: Path = option(help="Campaign folder.")
    out: Path = option(help="Parquet file to write the pairs to.")


def build(options: BuildCommand) -> None:
    """Aggregate votes, ratings and auto-scores into win/lose pairs, split by condition."""
    campaign = Campaign.open(options.campaign)
    out = campaign.outside(options.out, "--out")
    table = build_pairs(campaign, options)
    if options.source == "ranking" and options.ranking_prior == "auto" and (
            note := missing_prior_note(campaign, options.criteria(campaign))):
        console.print(f"[yellow]--ranking-prior auto: {note}[/yellow]", soft_wrap=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    if not table.num_rows:
        console.print(f"[yellow]no pairs: nothing in {options.campaign} decides one with --from {options.source} "
                      "(see `pairs summary` for its votes, ratings and scores); an empty file was written[/yellow]")
    counts = Table(title=f"pairs → {options.out}")
    for column in ("split", "source", "criterion", "pairs", "mean agreement"):
        counts.add_column(column)
    con = duckdb.connect()
    con.register("pairs", table)
    for row in con.execute("SELECT split, source, criterion, count(*), round(avg(agreement), 3) FROM pairs "
                           "GROUP BY ALL ORDER BY ALL").fetchall():
        counts.add_row(*map(str, row))
    console.print(counts)


command(app, BuildCommand, build, "build")


@dataclass(frozen=True, kw_only=True)
class StatsOptions:
    """`pairs stats`."""

    campaign: Path = option(help="Campaign folder.")
    by: Literal["generator", "seed"] = option("generator", "Bradley–Terry strengths of generators or of seeds.")
    bootstrap: int = option(200, "Bootstrap resamples for the 95% intervals.", minimum=10)
    as_json: bool = option(False, "Print JSON instead of tables.", flag="--json")

    def __post_init__(self) -> None:
        check_choices(self)


def stats(options: StatsOptions) -> None:
    """Agreement (Krippendorff's α), annotator reliability, strengths with 95% CIs, auto-score vs humans."""
    report = campaign_stats(Campaign.open(options.campaign), by=options.by, bootstrap=options.bootstrap)
    if options.as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    _table("agreement (Krippendorff's α)", ["criterion", "alpha"], list(report["alpha"].items()))
    _table("annotators", ["annotator", "showings", "skips", "tie rate", "agrees with majority", "gold accuracy"],
           [(a["annotator"], a["showings"], a["skips"], a["tie_rate"], a["agreement_with_majority"],
             a["gold_accuracy"]) for a in report["annotators"]])
    _table(f"Bradley–Terry strengths by {options.by} (overall)", ["name", "strength", "95% CI", "wins", "losses"],
           [(s["name"], s["strength"], f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}]", s["wins"], s["losses"])
            for s in report["strengths"]])
    _table("auto-score predicts the human winner", ["score", "criterion", "pairs", "accuracy", "AUC"],
           [(a["score"], a["criterion"], a["pairs"], a["accuracy"], a["auc"]) for a in report["auto_scores"]])




command(app, StatsOptions, stats, "stats")


def _table(title: str, columns: list[str], rows: list[tuple]) -> None:
    table = Table(title=title)
    for column in columns:  # names and numbers stay whole; only free text (skip reasons) wraps
        table.add_column(column, no_wrap=column != "reasons", overflow="fold", min_width=len(column))
    for row in rows:
        table.add_row(*("–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """`pairs export`."""

    campaign: Path = option(help="Campaign the pairs were built from.")
    pairs: Path = option(help="Parquet file from `pairs build`.")
    to_hf: Path = option(help="Output folder of the Hugging Face dataset.")
    embed_media: bool = option(False, "Put media bytes in the dataset instead of copied files (always with "
                               "--push-to-hub).")
    format: Literal["hf", "parquet"] = option("hf", "hf (DatasetDict.save_to_disk) or parquet (files per split).")
    max_shard_size: str = option(DEFAULT_MAX_SHARD_SIZE, "Largest Arrow/Parquet file of a split, e.g. 64MB or 1GB.")
    push_to_hub: str | None = option(None, "Also upload to this Hub repository (needs a login); media are embedded, "
                                     "as the Hub copy cannot follow media/ paths.")

    def __post_init__(self) -> None:
        check_choices(self)
        max_shard_bytes(self.max_shard_size)


def export(options: ExportOptions) -> None:
    """Export pairs with their media as a Hugging Face dataset (train / heldout) and a dataset card."""
    # datasets takes seconds to import: only `export` pays for it.
    from pairs.export import check_hub_access, export_pairs, push_to_hub as upload

    if options.push_to_hub:
        check_hub_access(options.push_to_hub)
    pairs = options.pairs
    if not pairs.is_file():
        raise UserError(f"{pairs}: pairs file not found; make it with `pairs build --out {pairs}`")
    try:
        table = pq.read_table(pairs)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user mistake
        raise UserError(f"{pairs}: not a Parquet file ({exc}); make it with `pairs build`") from None
    shard_size = max_shard_bytes(options.max_shard_size)
    embed = options.embed_media or options.push_to_hub is not None  # a Hub copy cannot follow media/ paths
    campaign = Campaign.open(options.campaign)
    counts = export_pairs(campaign, table, campaign.outside(options.to_hf, "--to-hf"), embed,
                          options.format == "parquet", str(pairs), shard_size)
    console.print(f"exported {', '.join(f'{k}: {n}' for k, n in counts.items())} pairs → {options.to_hf}")
    if options.push_to_hub:
        upload(options.to_hf, options.push_to_hub, shard_size)
        console.print(f"pushed to {options.push_to_hub}")


command(app, ExportOptions, export, "export")


@dataclass(frozen=True, kw_only=True)
class ScoreOptions(ScorerOptions):
    """`pairs score`: the scorers' options, and the campaign."""

    campaign: Path = option(help="Campaign folder.")


def score(options: ScoreOptions) -> None:
    """Score every clip not yet scored by each scorer's current version (cached by clip sha256); under
    `accelerate launch` the clips are split over the processes."""
    from pairs.scoring.score import score_campaign
    from pairs.scoring.scorers import load_scorers

    store = _campaign_of_each_process(options.campaign)
    ready, unavailable = load_scorers(options)
    for name, why in unavailable.items():
        console.print(f"{name}: skipped, {why}")
    for scorer in ready:
        console.print(f"{scorer.name}: version {scorer.version}")
    run_result = score_campaign(store, ready)
    console.print(f"scored: {run_result.scored}; already scored: {run_result.cached} clips; "
                  f"skipped: {run_result.skipped}" + (f"; marked: {run_result.marked}" if run_result.marked else ""))
    for line in run_result.mark_advice(ready):
        console.print(f"[yellow]warning:[/] {line}", soft_wrap=True)
    scores_table(options.campaign)


command(app, ScoreOptions, score, "score")


@app.command("scores")
def scores_table(campaign: Path = typer.Option(..., help="Campaign folder.")) -> None:
    """Per scorer and metric: clips scored, skipped (with reasons), marked (e.g. no sync peak), mean ± sd of the
    unmarked values; then which weights made them."""
    from pairs.scoring.score_table import score_table

    metrics, versions_by_scorer = score_table(Campaign.open(campaign))
    columns = ["scorer", "metric", "scored", "skipped", "reasons", "marked", "mean", "sd"]
    # Reasons and marks are columns only when some clip has them, so the usual table fits 80 characters.
    keep = [i for i, name in enumerate(columns) if name not in ("reasons", "marked") or any(row[i] for row in metrics)]
    _table(f"scores of {campaign}", [columns[i] for i in keep], [tuple(row[i] for i in keep) for row in metrics])
    for scorer, versions in versions_by_scorer:
        console.print(f"  {scorer}: {versions}", soft_wrap=True)


SUMMARY_CONDITIONS = 20  # rows of the per-condition table: a campaign may hold a million clips


@app.command()
def summary(campaign: Path = typer.Option(..., help="Campaign folder.")) -> None:
    """Print what a campaign holds: conditions, clips per generator (the first conditions), scores, votes."""
    store = Campaign.open(campaign)
    con = store.connect()  # DuckDB scans the Parquet partitions and journal segments; nothing is read whole
    totals = Table(title=f"campaign {campaign}")
    totals.add_column("table")
    totals.add_column("rows", justify="right")
    totals.add_column("undone (not counted)", justify="right")
    for name in ("conditions", "clips", "scores", "annotators", "votes", "ratings"):
        rows = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
        undone = ""
        if name in ("votes", "ratings") and rows:
            counted = con.execute(f"SELECT count(*) FROM {counted_view(con, store, name)}").fetchall()[0][0]
            undone = str(rows - counted)
        totals.add_row(name, str(rows), undone)
    console.print(totals)
    conditions = con.execute("SELECT count(DISTINCT condition_id) FROM clips").fetchall()[0][0]
    shown = min(conditions, SUMMARY_CONDITIONS)
    per_condition = Table(title="clips per condition" + (f" (the first {shown} of {conditions})"
                                                         if conditions > shown else ""))
    for column in ("condition", "clips", "generators", "fps", "size", "seconds"):
        per_condition.add_column(column)
    rows = con.execute("""
        SELECT condition_id, count(*), string_agg(DISTINCT generator, ','), any_value(fps),
               any_value(width) || 'x' || any_value(height), round(avg(duration), 2)
        FROM clips WHERE condition_id IN (SELECT DISTINCT condition_id FROM clips ORDER BY 1 LIMIT ?)
        GROUP BY condition_id ORDER BY condition_id
    """, [shown]).fetchall()
    for row in rows:
        per_condition.add_row(*(f"{v:g}" if isinstance(v, float) else str(v) for v in row))
    console.print(per_condition)
    if con.execute("SELECT count(*) FROM scores").fetchall()[0][0]:
        scores_table(campaign)


@app.command()
def repair(campaign: Path = typer.Option(..., help="Campaign folder.")) -> None:
    """Write the campaign's table snapshots (tables/) again from its catalog (catalog.duckdb) and delete journal
    segments' unreadable Parquet twins (their JSON lines are read instead), e.g. after a file was damaged or deleted;
    the journals' records and the media are left as they are."""
    done = Campaign.open(campaign).republish()
    console.print(f"republished {len(done.rows)} tables of {campaign} from its catalog: "
                  + ", ".join(f"{table} {count:,} rows" for table, count in done.rows.items()))
    for table, count in done.differing.items():
        if count:
            console.print(f"{table}: {count:,} rows of the old snapshot differed from the catalog's; the catalog's "
                          "are kept (a catalog restored from a backup would have turned newer values back)")
    for twin in done.dropped_twins:
        console.print(f"{twin}: unreadable, deleted; {twin.with_suffix('.jsonl').name} beside it is read instead")


def main() -> None:
    """Console entry point of `pairs`."""
    run(app, "pairs")


if __name__ == "__main__":  # `accelerate launch -m pairs.cli generate|score …`
    main()
