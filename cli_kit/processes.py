"""The processes of `accelerate launch` (or this one alone) as every command sees them."""

from __future__ import annotations

from accelerate import PartialState
from accelerate.utils import parse_flag_from_env


def process_state() -> PartialState:
    """This process's place among those `accelerate launch` started (one of one without it)."""
    # Accelerator reads ACCELERATE_USE_CPU, PartialState does not: without it CPU processes would not join.
    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
