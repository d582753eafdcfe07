"""`annotate`: annotator accounts, the campaign's annotation task, and the annotation app.

Each command's options are a dataclass's fields (cli_kit.options): one default and one list of choices each.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from annotate.modes import mode_of
from annotate.settings import ServerSettings, TaskSettings, record_task
from annotate.simulate import Preference, simulate as run_simulation
from annotate.users import add_annotator, annotators, disable_annotator
from campaign.store import Campaign
from campaign.task import load_task, task_path
from cli_kit.app import new_app, run
from cli_kit.options import check_choices, command, option
from data_schemas import AnnotationTask, UserError, to_rows
from data_schemas.records import Role
from pairs.preferences.bradley_terry import missing_prior_note
from pairs.scoring.counted_scores import clip_score_lookup

app = new_app("Annotator accounts, the annotation task, and the annotation app.")
users = new_app("Manage the annotator accounts of a campaign.")
task_app = new_app("Show or change what a campaign asks its annotators.")
app.add_typer(users, name="users")
app.add_typer(task_app, name="task")
console = Console()


def _read_password(name: str, password_file: Path | None) -> str:
    if password_file is not None:
        if not password_file.is_file():
            raise UserError(f"{password_file}: password file not found (or a folder); check --password-file")
        try:
            password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise UserError(f"{password_file}: not UTF-8 text; write the password as one line of text") from None
        if "\n" in password or "\r" in password:  # nobody could type the line break at the login
            raise UserError(f"{password_file}: more than one line; write the password alone on the first line")
        if not password.strip():
            raise UserError(f"{password_file}: the password is blank; write one")
        return password
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for a password; pass --password-file FILE")
    return typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)


@dataclass(frozen=True, kw_only=True)
class UserAdd:
    """`annotate users add`."""

    name: str = option(help="Login name (letters, digits, '.', '_', '-').", argument=True)
    campaign: Path = option(help="Campaign folder.")
    role: Role = option("annotator", "What the account may do.")
    password_file: Path | None = option(None, "Read the password from this file instead of prompting.")

    def __post_init__(self) -> None:
        check_choices(self)


def users_add(options: UserAdd) -> None:
    """Create an account (or reset its password and role)."""
    store = Campaign.open(options.campaign)
    before = annotators(store).get(options.name)
    account = add_annotator(store, options.name, _read_password(options.name, options.password_file), options.role)
    if before is None:
        console.print(f"user {account.name} ({account.role}) added to {options.campaign}")
        return
    changed = ["password reset"] + ([f"role {before.role} → {account.role}"] if before.role != account.role else []) \
        + (["enabled again"] if before.disabled else [])
    console.print(f"user {account.name} existed: {', '.join(changed)} in {options.campaign}")


command(users, UserAdd, users_add, "add")


@dataclass(frozen=True, kw_only=True)
class UserList:
    """`annotate users list`."""

    campaign: Path = option(help="Campaign folder.")


def users_list(options: UserList) -> None:
    """List accounts with their role and whether they are enabled."""
    table = Table(title=f"users of {options.campaign}")
    for column in ("name", "role", "enabled", "created"):
        table.add_column(column)
    for account in sorted(annotators(Campaign.open(options.campaign)).values(), key=lambda a: a.name):
        table.add_row(account.name, account.role, "no" if account.disabled else "yes",
                      account.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


command(users, UserList, users_list, "list")


@dataclass(frozen=True, kw_only=True)
class UserDisable:
    """`annotate users disable`."""

    name: str = option(help="Login name.", argument=True)
    campaign: Path = option(help="Campaign folder.")


def users_disable(options: UserDisable) -> None:
    """Stop an account from logging in (a running server ends its sessions within seconds); its votes are kept."""
    disable_annotator(Campaign.open(options.campaign), options.name)
    console.print(f"user {options.name} disabled")


command(users, UserDisable, users_disable, "disable")


@dataclass(frozen=True, kw_only=True)
class TaskShow:
    """`annotate task show`."""

    campaign: Path = option(help="Campaign folder.")
    as_json: bool = option(False, "Print the task as JSON (the task file's fields).", flag="--json")


def task_text(saved: AnnotationTask) -> str:
    """The task as people read it: settings, instructions, then each definition with its examples."""
    lines = [f"mode:         {saved.mode}", f"criteria:     {', '.join(saved.criteria)}",
             f"overlap:      {saved.overlap}", f"gold rate:    {saved.gold_rate}", f"assign:       {saved.assign}",
             f"practice:     {saved.practice} gold items",
             f"gold feedback: {'on' if saved.gold_feedback else 'off'}", "",
             "instructions:", f"  {saved.instructions}"]
    for name in (*saved.criteria, *mode_of(saved).verdicts):
        lines += ["", f"{name}:", f"  {saved.definitions.get(name, '(no definition)')}"]
        if saved.examples.get(name):
            lines.append(f"  examples: {saved.examples[name]}")
    return "\n".join(lines)


def task_show(options: TaskShow) -> None:
    """Print the campaign's annotation task (the default task while none is saved)."""
    store = Campaign.open(options.campaign)
    saved = load_task(store)
    if options.as_json:
        typer.echo(json.dumps(to_rows([saved])[0], indent=2, ensure_ascii=False))
        return
    where = task_path(store)
    typer.echo(f"# {where}" if where.exists() else f"# the default task ({where} is not written yet)")
    typer.echo(task_text(saved))


command(task_app, TaskShow, task_show, "show")


def task_set(options: TaskSettings) -> None:
    """Change the campaign's annotation task; options left out keep their value."""
    store = Campaign.open(options.campaign)
    saved = record_task(store, options)
    gold = (f"gold rate {saved.gold_rate}, assign {saved.assign}, practice {saved.practice}, gold feedback "
            f"{'on' if saved.gold_feedback else 'off'}" if saved.mode == "ab" else
            f"assign {saved.assign} (no gold items, practice or feedback: they are clip pairs)")
    console.print(f"task saved in {task_path(store)}: mode {saved.mode}, criteria {', '.join(saved.criteria)}, "
                  f"overlap {saved.overlap}, {gold}")


command(task_app, TaskSettings, task_set, "set")


@dataclass(frozen=True, kw_only=True)
class ServeConfig(ServerSettings, TaskSettings):
    """`annotate serve`: the task's settings (saved in the campaign when given), the server's, a simulation."""

    simulate: int = option(0, "Run N scripted annotators through the API, then keep serving.", minimum=0)
    simulate_votes: int = option(20, "Votes per scripted annotator.", minimum=1)
    simulate_score: str = option(Preference.score, "scorer/metric the scripted annotators prefer (higher is "
                                 "better).")
    simulate_marks: bool = option(False, "Scripted annotators also mark, on the clip they vote against, the seconds "
                                  "where SyncNet finds its lip sync worse than the other clip's (with a sync/ "
                                  "--simulate-score).")
    exit_after_simulation: bool = option(False, "Stop the server when the simulation ends.")


def practice_note(task: AnnotationTask, practice: int) -> str:
    """How long a new annotator's practice round is (`practice` gold items as served), or why there is none."""
    if practice:
        return f"practice {practice} gold items"
    return "no practice (no gold items to practise on)" if task.practice else "no practice"


def serve(config: ServeConfig) -> None:
    """Start the annotation app on a campaign, asking its task (task options given here are saved in it)."""
    # gradio takes seconds to import: only `serve` pays for it.
    from annotate.server import launch

    if config.simulate_marks and not config.simulate_score.startswith("sync/"):
        raise UserError(f"--simulate-marks: scripted marks come from SyncNet, but the annotators prefer "
                        f"{config.simulate_score}; use a sync/ --simulate-score or drop --simulate-marks")
    store = Campaign.open(config.campaign)
    asked = record_task(store, config)
    shown = len(mode_of(asked).captions)  # clips one item shows
    most = store.connect(journals=False).execute(
        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM clips GROUP BY condition_id)").fetchall()[0][0]
    if most == 0:
        raise UserError(f"{config.campaign}: no clips to annotate; add some with `pairs generate` or `pairs ingest`")
    if most < shown:
        raise UserError(f"{config.campaign}: no condition has {shown} clips to compare; add candidates (`pairs "
                        "generate --candidates 2` or more) or rate single clips (`annotate task set --mode rating`)")
    if asked.assign == "active" and (note := missing_prior_note(store, tuple(asked.criteria))):
        console.print(f"[yellow]--assign active: {note}[/yellow]", soft_wrap=True)
    if config.simulate and not clip_score_lookup(store, config.simulate_score):
        console.print(f"[yellow]--simulate-score {config.simulate_score}: no clip of {config.campaign} has this score "
                      "(`pairs score` makes them, `pairs scores` lists them): the scripted annotators vote at "
                      "random[/yellow]")
    server = launch(store, asked, config)
    if not config.simulate and not any(not a.disabled for a in annotators(store).values()):
        console.print(f"[yellow]no enabled accounts: nobody can log in; add one with `annotate users add NAME "
                      f"--campaign {config.campaign}`[/yellow]")
    practice = practice_note(asked, server.service.assigner.practice)
    console.print(f"annotation app: {server.url}  (mode {asked.mode}, {len(server.service.assigner.items)} items, "
                  f"overlap {asked.overlap}, assign {asked.assign}, {practice}, gold feedback "
                  f"{'on' if asked.gold_feedback else 'off'}; JSON API under {server.url}api/)")
    try:
        if config.simulate:
            result = run_simulation(server.url, store, config.simulate, config.simulate_votes,
                                    Preference(score=config.simulate_score, marks=config.simulate_marks))
            console.print(f"simulation: {result.votes} votes from {config.simulate} scripted annotators"
                          + (f", {len(result.errors)} errors: {result.errors[0]}" if result.errors else ""))
        if not config.exit_after_simulation:
            server.wait()
    finally:
        server.close()


command(app, ServeConfig, serve, "serve")


def main() -> None:
    """Console entry point of `annotate`."""
    run(app, "annotate")
