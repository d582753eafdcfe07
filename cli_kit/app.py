"""What the four command-line programs share: one typer app shape and one way to report user errors."""

from __future__ import annotations

import logging
import os
import sys

import typer

from data_schemas import UserError

_DEBUG_FLAG = "--debug"


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
    sys.exit(code if isinstance(code, int) else 0)
