"""Options written once: a config dataclass holds every option's default, help and choices, and becomes a command.

A field is declared with `option(default, help)`; its type says how the command line spells it:
`Literal[...]` is a choice (checked once, by the config's `__post_init__` calling `check_choices`, with the
allowed values in the message),
`tuple[str, ...]` a comma list (parsed by `comma_list`), `bool` a --flag/--no-flag pair, `X | None` an
optional value. `command(app, Config, run)` turns the dataclass into a typer command whose defaults are
the dataclass's, so no default or choice is written twice. `save_run_config` records the resolved
config and the command line in a run folder.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import math
import shlex
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

import typer

from data_schemas import UserError

C = TypeVar("C")
REQUIRED = dataclasses.MISSING


def option(default: Any = REQUIRED, help: str = "", *, flag: str | None = None, minimum: float | None = None,
           maximum: float | None = None, argument: bool = False) -> Any:
    """A config field with its one default, its help line and how the command line names it."""
    metadata = {"help": help, "flag": flag, "min": minimum, "max": maximum, "argument": argument}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for a default list")
    return dataclasses.field(default=default, metadata=metadata)


def flag_of(field: dataclasses.Field) -> str:
    """How the command line spells a field (`--min-votes`)."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def comma_list(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """`a, b,,c` → ("a", "b", "c"): the one parser of comma lists."""
    if isinstance(text, (tuple, list)):
        return tuple(text)
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _bare(hint: Any) -> tuple[Any, bool]:
    """(the hint without None, whether None is allowed)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


def choices_of(hint: Any) -> tuple[str, ...] | None:
    """The allowed values of a Literal or Enum field (or of a tuple's items), else None."""
    hint, _ = _bare(hint)
    if typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is Literal:
        return tuple(str(a) for a in typing.get_args(hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return tuple(str(m.value) for m in hint)
    return None


def check_choices(config: Any) -> None:
    """Raise one UserError for the first field whose value is not among its choices, naming the flag and them."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        allowed, value = choices_of(hints[field.name]), getattr(config, field.name)
        if allowed is None or value is None:
            continue
        for item in value if isinstance(value, tuple) else (value,):
            if str(item) not in allowed:
                raise UserError(f"{flag_of(field)} {item}: choose from {', '.join(allowed)}")


def check_positive(config: Any, *names: str) -> None:
    """Raise one UserError for the first of these fields that is zero or negative (typer's bounds are inclusive)."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    for name in names:
        if not getattr(config, name) > 0:
            raise UserError(f"{flag_of(fields[name])} {getattr(config, name)}: must be above 0")


def _cli_type(hint: Any) -> Any:
    bare, optional = _bare(hint)
    if typing.get_origin(bare) is Literal or typing.get_origin(bare) is tuple:
        bare = str
    return bare | None if optional else bare


def _parameter(field: dataclasses.Field, hint: Any) -> inspect.Parameter:
    meta, default = field.metadata, field.default
    allowed = choices_of(hint)
    help_text = meta.get("help", "")
    if allowed and typing.get_origin(_bare(hint)[0]) is not tuple:
        help_text += f" One of: {', '.join(allowed)}."
    if typing.get_origin(_bare(hint)[0]) is tuple:
        help_text += " Comma-separated" + (f" from: {', '.join(allowed)}." if allowed else ".")
        default = ",".join(default) if isinstance(default, tuple) else default
    cli_default = ... if default is REQUIRED else default
    if meta.get("argument"):
        info = typer.Argument(cli_default, help=help_text)
    elif _bare(hint)[0] is bool:
        name = flag_of(field)[2:]
        info = typer.Option(cli_default, f"--{name}/--no-{name}", help=help_text)
    else:
        info = typer.Option(cli_default, flag_of(field), help=help_text, min=meta.get("min"), max=meta.get("max"))
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=_cli_type(hint))


def from_cli(config_type: type[C], values: dict[str, Any]) -> C:
    """The config for parsed command-line values, comma lists split (the config checks its own choices)."""
    hints = typing.get_type_hints(config_type)
    parsed = {}
    for field in dataclasses.fields(config_type):
        if field.name not in values:
            continue
        value = values[field.name]
        if typing.get_origin(_bare(hints[field.name])[0]) is tuple and isinstance(value, str):
            value = comma_list(value)
        if isinstance(value, float) and not math.isfinite(value):  # click's range checks let nan through
            raise UserError(f"{flag_of(field)} {value}: give a finite number")
        parsed[field.name] = value
    return config_type(**parsed)


def command(app: typer.Typer, config_type: type[C], run: Callable[[C], Any], name: str | None = None,
            help: str | None = None, exclude: tuple[str, ...] = ()) -> None:
    """Register `run(config)` as a command whose options are `config_type`'s fields (less `exclude`)."""
    hints = typing.get_type_hints(config_type)
    fields = [f for f in dataclasses.fields(config_type) if f.init and f.name not in exclude]
    parameters = [_parameter(f, hints[f.name]) for f in fields]

    def invoke(**values: Any) -> Any:
        return run(from_cli(config_type, values))

    invoke.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    invoke.__annotations__ = {p.name: p.annotation for p in parameters}
    invoke.__name__ = name or config_type.__name__.lower()
    invoke.__doc__ = help or run.__doc__
    app.command(name)(invoke)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def save_run_config(out: Path, config: Any) -> None:
    """Write `config.json` (every resolved option) and `command.txt` (the command line) into a run folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(_jsonable(config), indent=2) + "\n", encoding="utf-8")
    (out / "command.txt").write_text(shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) + "\n", encoding="utf-8")
