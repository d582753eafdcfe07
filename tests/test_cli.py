"""The command-line contract shared by every program: --help everywhere, one-line user errors, --debug."""

import importlib
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from typer.testing import CliRunner

BIN = Path(sys.executable).parent


def run(program: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / program), *args], capture_output=True, text=True, timeout=120, input=stdin)


def app_of(program: str):
    """The typer app behind a console script (its entry point's module's `app`)."""
    (entry,) = entry_points(group="console_scripts", name=program)
    return importlib.import_module(entry.module).app


def commands(app, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path of a program, found by reading its --help."""
    out = CliRunner().invoke(app, [*prefix, "--help"]).stdout
    names = []
    if "Commands:" in out:
        for line in out.split("Commands:")[1].splitlines()[1:]:
            if line.startswith("  ") and line.split():
                names.append(line.split()[0])
    found = [prefix]
    for name in names:
        found += commands(app, prefix + (name,))
    return found


@pytest.mark.parametrize("program", ["pairs", "annotate", "train", "evaluate"])
def test_every_command_has_help(program):
    top = run(program, "--help")  # the installed script itself
    assert top.returncode == 0 and "Usage:" in top.stdout
    app = app_of(program)
    paths = commands(app)
    assert len(paths) >= 2
    for path in paths:  # in process: a fresh interpreter per command costs seconds each
        result = CliRunner().invoke(app, [*path, "--help"], prog_name=program)
        assert result.exit_code == 0 and "Usage:" in result.stdout, path


def test_user_error_is_one_line_and_exit_2_and_debug_shows_the_traceback(tmp_path):
    result = run("pairs", "summary", "--campaign", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == f"pairs: error: {tmp_path}: not a campaign (no campaign.json); create one with `pairs ingest`\n"
    debug = run("pairs", "--debug", "summary", "--campaign", str(tmp_path))
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "UserError" in debug.stderr


def test_bad_flag_value_names_the_flag(tmp_path):
    result = run("pairs", "world", "--out", str(tmp_path), "--variants", "shift,wobble")
    assert result.returncode == 2
    assert "--variants wobble: choose from" in result.stderr
