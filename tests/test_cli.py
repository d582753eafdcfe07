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


def test_a_machine_problem_is_one_line_and_exit_1(tmp_path):
    import errno

    from cli_kit.app import machine_problem

    (tmp_path / "taken").write_text("")
    result = run("pairs", "world", "--out", str(tmp_path / "taken"), "--conditions", "1", "--size", "32")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "error" in line] == [
        f"pairs: error: {tmp_path / 'taken'}/w0-0000: not a directory: choose another path"]
    full = OSError(errno.ENOSPC, "No space left on device", "/data/out.parquet")
    assert machine_problem(full).startswith("no space left on the device of /data/out.parquet: free space")
    try:  # as DuckDB or datasets report it: their own exception, the OSError as its cause or only in the text
        try:
            raise full
        except OSError as cause:
            raise RuntimeError("could not write the split") from cause
    except RuntimeError as wrapped:
        assert machine_problem(wrapped) == machine_problem(full)
    assert machine_problem(Exception('IO Error: Could not write "catalog.duckdb.wal": No space left on device'))
    assert machine_problem(ValueError("a bug")) is None and machine_problem(FileExistsError("no name")) is None
    try:  # a bug raised while handling a path error, `from None`: not blamed on the path
        try:
            raise FileExistsError(errno.EEXIST, "File exists", "/data/out")
        except FileExistsError:
            raise KeyError("a bug") from None
    except KeyError as bug:
        assert machine_problem(bug) is None


def test_numbers_a_run_cannot_use_are_refused_in_one_line(tmp_path):
    from cli_kit.options import from_cli
    from data_schemas import UserError
    from train.config import DPOConfig

    with pytest.raises(UserError, match=r"^--beta -1.0: must be above 0$"):
        DPOConfig(dataset="d", out=tmp_path, beta=-1.0)
    with pytest.raises(UserError, match=r"^--lr nan: give a finite number$"):
        from_cli(DPOConfig, {"dataset": "d", "out": tmp_path, "lr": float("nan")})


def test_train_refuses_to_overwrite_a_finished_run_unless_resumed(tmp_path):
    from data_schemas import UserError
    from train.cli import _new_run
    from train.config import DPOConfig

    (tmp_path / "family.json").write_text('{"family": "embedded"}')
    (tmp_path / "config.json").write_text("the finished run's")
    with pytest.raises(UserError, match="holds a finished run"):
        _new_run(DPOConfig(dataset="elsewhere", out=tmp_path, lr=5.0))
    assert (tmp_path / "config.json").read_text() == "the finished run's"
    _new_run(DPOConfig(dataset="elsewhere", out=tmp_path, resume=True))
    assert '"elsewhere"' in (tmp_path / "config.json").read_text()


def test_model_writers_refuse_a_folder_that_holds_a_model_and_syncnet_checks_its_numbers(tmp_path):
    from data_schemas import UserError
    from train.cli import init_model, syncnet
    from train.config import InitModelConfig, SyncNetConfig

    (tmp_path / "family.json").write_text('{"family": "embedded"}')
    with pytest.raises(UserError, match="holds a finished run or model \\(family.json\\); choose another folder$"):
        init_model(InitModelConfig(out=tmp_path))
    assert (tmp_path / "family.json").read_text() == '{"family": "embedded"}'
    (tmp_path / "model.safetensors").write_bytes(b"trained")
    with pytest.raises(UserError, match="holds a finished run or model \\(model.safetensors\\)"):
        syncnet(SyncNetConfig(out=tmp_path, steps=1))
    with pytest.raises(UserError, match="^--crop 20: must be a multiple of 16$"):
        SyncNetConfig(out=tmp_path, crop=20)
    with pytest.raises(UserError, match="^--lr -1.0: must be above 0$"):
        SyncNetConfig(out=tmp_path, lr=-1.0)
    from train.config import CacheConfig

    for splits, message in ((("foo",), "--splits foo: choose from train, heldout"), ((), "name at least one")):
        with pytest.raises(UserError, match=message):
            CacheConfig(dataset="d", out=tmp_path / "cache", splits=splits)
    too_far = run("train", "syncnet", "--out", str(tmp_path / "new"), "--min-shift", "100")
    assert too_far.returncode == 2 and "--min-shift" in too_far.stderr and "Traceback" not in too_far.stderr
