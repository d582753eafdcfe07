import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from typer.testing import CliRunner

from cli_kit.app import new_app
from cli_kit.options import check_choices, command, comma_list, option, save_run_config
from data_schemas import UserError


@dataclass(frozen=True, kw_only=True)
class Knobs:
    campaign: Path = option(help="Campaign folder.")
    loss: Literal["sigmoid", "hinge"] = option("sigmoid", "Loss.")
    scorers: tuple[Literal["sync", "motion"], ...] = option(("sync", "motion"), "Scorers.")
    steps: int = option(3, "Steps.", minimum=1)
    fast: bool = option(False, "Go fast.")
    weights: Path | None = option(None, "Weights.")
    source: Literal["ab", "auto"] = option("ab", "Where from.", flag="--from")

    def __post_init__(self) -> None:
        check_choices(self)


def _app(seen: list):
    app = new_app("test")
    command(app, Knobs, seen.append, "go", "Go.")
    app.command("other")(lambda: None)  # a second command keeps typer in sub-command mode
    return app


def test_options_come_from_the_dataclass_defaults_and_flags():
    seen: list[Knobs] = []
    result = CliRunner().invoke(_app(seen), ["go", "--campaign", "c", "--scorers", "motion, sync", "--from", "auto",
                                             "--fast"])
    assert result.exit_code == 0, result.output
    assert seen == [Knobs(campaign=Path("c"), scorers=("motion", "sync"), source="auto", fast=True)]
    CliRunner().invoke(_app(seen), ["go", "--campaign", "c"])
    assert seen[-1] == Knobs(campaign=Path("c"))  # every default is the dataclass's own


def test_a_bad_choice_is_one_error_naming_the_flag_and_the_choices():
    with pytest.raises(UserError, match="--loss foo: choose from sigmoid, hinge"):
        Knobs(campaign=Path("c"), loss="foo")
    with pytest.raises(UserError, match="--scorers lips: choose from sync, motion"):
        Knobs(campaign=Path("c"), scorers=("sync", "lips"))
    with pytest.raises(UserError, match="--from x: choose from ab, auto"):
        Knobs(campaign=Path("c"), source="x")


def test_help_lists_choices_and_ranges():
    result = CliRunner().invoke(_app([]), ["go", "--help"])
    assert "One of: sigmoid, hinge" in result.output and "--from" in result.output and "x>=1" in result.output


def test_comma_list_is_the_one_parser():
    assert comma_list(" a, b,,c ") == ("a", "b", "c")
    assert comma_list("") == ()
    assert comma_list(("x",)) == ("x",)


def test_run_folder_gets_resolved_config_and_command_line(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["/usr/bin/train", "dpo", "--out", "run dir"])
    save_run_config(tmp_path / "run", Knobs(campaign=Path("c"), weights=Path("w.pt")))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["campaign"] == "c" and config["weights"] == "w.pt" and config["scorers"] == ["sync", "motion"]
    assert (tmp_path / "run" / "command.txt").read_text() == "train dpo --out 'run dir'\n"
