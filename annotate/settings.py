"""The options of `annotate task set` and `annotate serve`, one dataclass field each.

Both commands take the task's settings; an option left out keeps what the campaign's task says, and
whatever an option changes is saved in the campaign's task, so later steps read what was asked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from annotate.modes import mode_of
from annotate.showing import quoted
from campaign.store import Campaign
from campaign.task import load_task, save_task, task_path
from cli_kit.options import check_choices, option
from data_schemas import AnnotationTask, UserError
from data_schemas.records import AssignMode, TaskMode


@dataclass(frozen=True, kw_only=True)
class TaskSettings:
    """What may be changed in a campaign's task; None keeps the task's own value."""

    campaign: Path = option(help="Campaign folder.")
    mode: TaskMode | None = option(None, "ab: two clips of one condition side by side; rating: 1–5 per clip.")
    criteria: tuple[str, ...] | None = option(None, "Criteria to ask, in order; a new one needs a --definition.")
    overlap: int | None = option(None, "Distinct annotators per item.", minimum=1)
    gold_rate: float | None = option(None, "Share of showings that are gold items (A/B mode).", minimum=0.0,
                                     maximum=1.0)
    instructions: str | None = option(None, "What annotators read before they start.")
    assign: AssignMode | None = option(None, "Which item comes next: round-robin over conditions, or active (the "
                                       "pair whose vote tells most about the candidates' order; A/B mode).")
    practice: int | None = option(None, "Gold items a new annotator answers first as practice, each followed by its "
                                  "known answers; not votes (0: no practice; A/B mode).", minimum=0)
    gold_feedback: bool | None = option(None, "Show a gold item's known answers after its vote, once practice is "
                                        "over (off: nothing tells a gold item apart).")
    definition: list[str] | None = option(None, "CRITERION=TEXT: a one-paragraph definition of a criterion, or of "
                                          "tie or both_bad; repeat the option for several.")
    example: list[str] | None = option(None, "CRITERION=TEXT: examples of worse and better clips; repeat the "
                                       "option for several.")

    def __post_init__(self) -> None:
        check_choices(self)


@dataclass(frozen=True, kw_only=True)
class ServerSettings:
    """How `annotate serve` runs, apart from the task it asks."""

    host: str = option("127.0.0.1", "Address to bind; 127.0.0.1 keeps the app on this machine.")
    port: int = option(7860, "Port.", minimum=1, maximum=65535)
    show_scores: bool = option(False, "Show auto-scores under each clip (hidden by default).")
    session_hours: float = option(12.0, "Hours a login (JSON-API token or page session) lasts.", minimum=0.001)


def with_settings(task: AnnotationTask, settings: TaskSettings) -> AnnotationTask:
    """The task with every setting that was given applied."""
    names = ("mode", "overlap", "gold_rate", "instructions", "assign", "practice", "gold_feedback")
    changes = {name: getattr(settings, name) for name in names if getattr(settings, name) is not None}
    if settings.criteria is not None:
        changes["criteria"] = list(settings.criteria)
    changed = dataclasses.replace(task, **changes)
    if changed.mode == "rating":
        _refuse_pair_settings(settings)
    verdicts = mode_of(changed).verdicts
    definitions = _texts("--definition", settings.definition, (*changed.criteria, *verdicts))
    examples = _texts("--example", settings.example, tuple(changed.criteria))
    return dataclasses.replace(changed, definitions={**changed.definitions, **definitions},
                               examples={**changed.examples, **examples})


def record_task(campaign: Campaign, settings: TaskSettings) -> AnnotationTask:
    """The campaign's task with the settings applied, saved in the campaign when that changes it or the
    campaign has none yet: the task served is always the one recorded, whatever later defaults become."""
    task = load_task(campaign)
    updated = with_settings(task, settings)
    if updated != task or not task_path(campaign).exists():
        save_task(campaign, updated)
    return updated


def _refuse_pair_settings(settings: TaskSettings) -> None:
    """Gold items are clip pairs (the world's in-sync clip against a degraded one): rating has none to mix in, to
    practise on or to give feedback on, so asking for them there would be ignored without a word."""
    asked = [flag for flag, value in (("--gold-rate", settings.gold_rate), ("--practice", settings.practice),
                                      ("--gold-feedback", settings.gold_feedback)) if value]
    if asked:
        raise UserError(f"{', '.join(asked)}: rating mode has no gold items (they are clip pairs); leave "
                        f"{'it' if len(asked) == 1 else 'them'} out, or use --mode ab")


def _texts(flag: str, given: list[str] | None, allowed: tuple[str, ...]) -> dict[str, str]:
    texts = {}
    for entry in given or ():
        name, sep, text = (part.strip() for part in entry.partition("="))
        if not sep or not name or not text:
            raise UserError(f"{flag} {quoted(entry)}: write CRITERION=TEXT")
        if name not in allowed:
            raise UserError(f"{flag} {quoted(name)}: choose from {', '.join(allowed)} "
                            "(add a criterion with --criteria)")
        texts[name] = text
    return texts
