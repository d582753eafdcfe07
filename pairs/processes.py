"""Running `pairs generate|score` in every process of `accelerate launch`, or in this one alone.

Each process takes its share of the work and writes its results as shards (campaign/shards.py); once all
have finished, the main process merges them into the catalog once. Shards left by a killed run are
merged before any new work is chosen, so their work is not done again. A single process writes straight
to the catalog, as it always has.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from accelerate.utils import gather_object

from campaign.shards import merge_shards, write_part
from campaign.store import Campaign
from cli_kit.processes import process_state
from data_schemas import UserError

Result = TypeVar("Result")
Sink = Callable[[dict[str, Iterable[Any]]], Any]  # takes {table: records}


def is_main_process() -> bool:
    """Whether this is the process that reports (the only one without accelerate launch)."""
    return process_state().is_main_process


def process_device(device: str) -> str:
    """`cuda` becomes this process's own GPU under accelerate launch; `cpu` stays. `cuda` without a GPU is refused:
    accelerate would quietly run on the CPU."""
    if device != "cuda":
        return device
    import torch

    if not torch.cuda.is_available():
        raise UserError("--device cuda: this process sees no CUDA GPU; use --device cpu, or check the driver and "
                        "CUDA_VISIBLE_DEVICES")
    return str(process_state().device)


def open_campaign(root: Path, create: bool = False) -> Campaign:
    """Open (or create) the campaign; under accelerate launch the main process creates it before the others look."""
    with process_state().main_process_first():
        return Campaign.open(root, create=create)


def run_sharded(campaign: Campaign, command: str,
                work: Callable[[Sink, int, int], Result]) -> list[Result]:
    """Run `work(sink, rank, processes)` in every process and commit what each gave its sink; returns every
    process's result, in rank order (the same list in each process)."""
    state = process_state()
    if state.num_processes == 1:
        merge_shards(campaign)
        return [work(campaign.add_rows, 0, 1)]
    if state.is_main_process:
        merge_shards(campaign)
    state.wait_for_everyone()  # every process chooses its work from the same catalog
    result = work(partial(write_part, campaign, command, state.process_index), state.process_index,
                  state.num_processes)
    state.wait_for_everyone()
    if state.is_main_process:
        merge_shards(campaign)
    state.wait_for_everyone()  # no process reports before the catalog holds everything
    return gather_object([result])
