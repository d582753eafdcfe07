"""What the four command-line programs share: one typer app shape and one way to report user errors."""

from __future__ import annotations

import errno
import logging
import os
import sys

import typer

from campaign.damage import unreadable_parquet
from data_schemas import UserError

_DEBUG_FLAG = "--debug"
NO_SPACE = "No space left on device"  # how libraries that wrap the OSError (DuckDB, datasets) still say it


def new_app(help_text: str) -> typer.Typer:
    """A typer app whose commands accept --debug (show tracebacks) before the command name."""
    app = typer.Typer(
        help=help_text, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def _root(debug: bool = typer.Option(False, _DEBUG_FLAG, help="Show full tracebacks for errors.")) -> None:
        logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(message)s")

    return app


def run(app: typer.Typer, prog_name: str) -> None:
    """Run `app`; a UserError becomes one line on stderr and exit status 2 (unless --debug)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        code = app(prog_name=prog_name, standalone_mode=False)
    except UserError as exc:
        if _DEBUG_FLAG in sys.argv[1:]:
            raise
        print(f"{prog_name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print(f"{prog_name}: aborted", file=sys.stderr)
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, bad value
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
    except Exception as exc:
        problem = machine_problem(exc)
        if problem is None or _DEBUG_FLAG in sys.argv[1:]:
            raise
        print(f"{prog_name}: error: {problem}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def machine_problem(exc: BaseException) -> str | None:
    """One line for a failure the machine or a path caused, not the program: a full disk, an output path where
    a file or folder of the other kind is, a Parquet file that cannot be read; None for anything else. Looks
    through the exceptions a library wrapped the cause in."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) or NO_SPACE in str(exc):
            where = getattr(exc, "filename", None)
            return (f"no space left on the device{f' of {where}' if where else ''}: free space there or write to "
                    f"another folder, then run the command again")
        if isinstance(exc, (FileExistsError, NotADirectoryError, IsADirectoryError)) and exc.filename:
            return f"{exc.filename}: {exc.strerror.lower()}: choose another path"
        if (unreadable := unreadable_parquet(exc)) is not None:
            return unreadable
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)  # `from None` ends it
    return None
