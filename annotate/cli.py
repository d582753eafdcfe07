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
from data_schemas import UserError

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


def main() -> None:
    """Console entry point of `annotate`."""
    run(app, "annotate")
