"""`annotate`: annotator accounts and the annotation app."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from annotate.cli_app import new_app, run
from annotate.store import Campaign
from annotate.users import add_annotator, annotators, disable_annotator
from data_schemas import CRITERIA, UserError

app = new_app("Annotator accounts and the annotation app.")
users = new_app("Manage the annotator accounts of a campaign.")
app.add_typer(users, name="users")
console = Console()


def _read_password(name: str, password_file: Path | None) -> str:
    if password_file is not None:
        if not password_file.is_file():
            raise UserError(f"{password_file}: password file not found; check --password-file")
        return password_file.read_text(encoding="utf-8").rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for a password; pass --password-file FILE")
    return typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)


@users.command("add")
def users_add(
    name: str = typer.Argument(..., help="Login name (letters, digits, '.', '_', '-')."),
    campaign: Path = typer.Option(..., help="Campaign folder."),
    role: str = typer.Option("annotator", help="annotator or admin."),
    password_file: Path | None = typer.Option(None, help="Read the password from this file instead of prompting."),
) -> None:
    """Create an account (or reset its password and role)."""
    store = Campaign.open(campaign)
    account = add_annotator(store, name, _read_password(name, password_file), role)
    console.print(f"user {account.name} ({account.role}) saved in {campaign}")


@users.command("list")
def users_list(campaign: Path = typer.Option(..., help="Campaign folder.")) -> None:
    """List accounts with their role and whether they are enabled."""
    table = Table(title=f"users of {campaign}")
    for column in ("name", "role", "enabled", "created"):
        table.add_column(column)
    for account in sorted(annotators(Campaign.open(campaign)).values(), key=lambda a: a.name):
        table.add_row(account.name, account.role, "no" if account.disabled else "yes",
                      account.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@users.command("disable")
def users_disable(
    name: str = typer.Argument(..., help="Login name."),
    campaign: Path = typer.Option(..., help="Campaign folder."),
) -> None:
    """Stop an account from logging in; its votes are kept."""
    disable_annotator(Campaign.open(campaign), name)
    console.print(f"user {name} disabled")


@app.command()
def serve(
    campaign: Path = typer.Option(..., help="Campaign folder."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; 127.0.0.1 keeps the app on this machine."),
    port: int = typer.Option(7860, help="Port."),
    mode: str = typer.Option("ab", help="ab (pairs side by side) or rating (1–5 per clip)."),
    criteria: str = typer.Option(",".join(CRITERIA), help="Comma-separated criteria."),
    overlap: int = typer.Option(3, min=1, help="Distinct annotators per item."),
    gold_rate: float = typer.Option(0.1, min=0.0, max=1.0, help="Share of showings that are gold items."),
    show_scores: bool = typer.Option(False, help="Show auto-scores under each clip (hidden by default)."),
    simulate: int = typer.Option(0, min=0, help="Run N scripted annotators through the API, then keep serving."),
    simulate_votes: int = typer.Option(20, min=1, help="Votes per scripted annotator."),
    simulate_score: str = typer.Option("sync/lse_c", help="scorer/metric the scripted annotators "
                                       "prefer (higher is better)."),
    exit_after_simulation: bool = typer.Option(False, help="Stop the server when the simulation ends."),
) -> None:
    """Start the annotation app on a campaign."""
    # gradio takes seconds to import: only `serve` pays for it.
    from annotate.server import ServeOptions, launch
    from annotate.simulate import Preference, simulate as run_simulation

    if mode not in ("ab", "rating"):
        raise UserError(f"--mode {mode}: choose ab or rating")
    chosen = tuple(c.strip() for c in criteria.split(",") if c.strip())
    if not chosen:
        raise UserError("--criteria: give at least one criterion")
    store = Campaign.open(campaign)
    if store.table("clips").num_rows < (2 if mode == "ab" else 1):
        raise UserError(f"{campaign}: no clips to annotate; add some with `pairs generate` or `pairs ingest`")
    options = ServeOptions(mode=mode, criteria=chosen, overlap=overlap, gold_rate=gold_rate, show_scores=show_scores)
    server = launch(store, options, host, port)
    console.print(f"annotation app: {server.url}  (mode {mode}, {len(server.service.assigner.items)} items, "
                  f"overlap {overlap}; JSON API under {server.url}api/)")
    try:
        if simulate:
            result = run_simulation(server.url, store, simulate, simulate_votes, Preference(score=simulate_score))
            console.print(f"simulation: {result.votes} votes from {simulate} scripted annotators"
                          + (f", {len(result.errors)} errors: {result.errors[0]}" if result.errors else ""))
        if not exit_after_simulation:
            server.wait()
    finally:
        server.close()


def main() -> None:
    """Console entry point of `annotate`."""
    run(app, "annotate")
