"""The campaign's annotation task: one small JSON file, `task.json`, replaced atomically when it changes.

A campaign without one asks the default task. `annotate serve` records the task it serves, overrides
included, so `pairs build` and `pairs stats` read the criteria that were actually asked.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

from campaign.store import Campaign, fsync_replace
from data_schemas import AnnotationTask, UserError, to_rows, validate
from data_schemas.records import ID_PATTERN

TASK_FILE = "task.json"


def task_path(campaign: Campaign) -> Path:
    """Where a campaign keeps its task."""
    return campaign.root / TASK_FILE


def require_servable(task: AnnotationTask, where: str) -> AnnotationTask:
    """The task, or UserError listing, after `where`, every reason it cannot be served."""
    problems = _problems(task)
    if problems:
        raise UserError(f"{where}: " + "; ".join(problems))
    return task


def _problems(task: AnnotationTask) -> list[str]:
    problems = validate(task)
    if problems:
        return problems
    if not task.criteria:
        problems.append("no criteria; give at least one (annotate task set --criteria lip_sync,overall)")
    for criterion in task.criteria:
        if not isinstance(criterion, str) or not re.fullmatch(ID_PATTERN, criterion):
            problems.append(f"criterion {str(criterion)[:40]!r}: use letters, digits, '.', '_' or '-'")
        elif not str(task.definitions.get(criterion) or "").strip():
            problems.append(f"criterion {criterion!r} has no definition; give one "
                            f"(annotate task set --definition {criterion}=TEXT)")
    if task.assign == "active" and task.mode != "ab":
        problems.append("assign active ranks clip pairs and needs mode ab; use --assign round-robin for rating")
    duplicated = sorted({str(c) for c in task.criteria if task.criteria.count(c) > 1})
    if duplicated:
        problems.append(f"criteria {', '.join(duplicated)} are listed twice; list each once")
    for name, texts in (("definitions", task.definitions), ("examples", task.examples)):
        if not all(isinstance(text, str) for text in texts.values()):
            problems.append(f"{name}: every value must be text")
    return problems


def load_task(campaign: Campaign) -> AnnotationTask:
    """The campaign's task, or the default task when the campaign has none yet."""
    path = task_path(campaign)
    if not path.exists():
        return AnnotationTask()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable task ({exc}); restore it, or delete it to get the default task") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a task (expected a JSON object); delete it to get the default task")
    version = data.pop("schema_version", AnnotationTask.SCHEMA_VERSION)
    if not isinstance(version, int) or version > AnnotationTask.SCHEMA_VERSION:
        raise UserError(f"{path}: task schema version {version} is newer than this portrait-dpo understands "
                        f"({AnnotationTask.SCHEMA_VERSION}); upgrade portrait-dpo")
    known = {f.name for f in dataclasses.fields(AnnotationTask)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{path}: unknown task fields {', '.join(unknown)}; remove them")
    return require_servable(AnnotationTask(**data), str(path))


def save_task(campaign: Campaign, task: AnnotationTask) -> None:
    """Check the task and replace the campaign's task file with it atomically."""
    require_servable(task, "annotation task")
    path = task_path(campaign)
    data = {"schema_version": AnnotationTask.SCHEMA_VERSION, **to_rows([task])[0]}
    tmp = path.with_name(f".{TASK_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    fsync_replace(tmp, path)
