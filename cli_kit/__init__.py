"""The command-line framework of the four programs: typer apps, options from config dataclasses, errors."""
