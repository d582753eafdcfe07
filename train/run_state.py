"""Where a training run starts: fresh, or resumed from its newest accelerate checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from accelerate import Accelerator

from data_schemas import UserError


def _checkpoints(out: Path) -> list[Path]:
    return sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(out: Path) -> Path | None:
    """The newest `checkpoints/step-N` folder of a run, if any."""
    found = _checkpoints(out)
    return found[-1] if found else None


def start_step(accelerator: Accelerator, out: Path, resume: bool, log_path: Path) -> int:
    """0 for a fresh run (an old log is removed); with `resume`, the newest checkpoint's step, its state
    loaded and the log cut back to it, so the resumed log continues the interrupted one exactly. Every process
    calls it; only the main one touches the log (another could read it half rewritten and write that back)."""
    step = 0
    if resume:
        checkpoint = latest_checkpoint(out)
        if checkpoint is None:
            raise UserError(f"--resume: no checkpoint in {out / 'checkpoints'}; run without --resume first")
        accelerator.load_state(str(checkpoint))
        step = int(checkpoint.name.split("-")[1])
    if accelerator.is_main_process:
        if not resume:
            log_path.unlink(missing_ok=True)
        elif log_path.exists():
            kept = [line for line in log_path.read_text().splitlines() if json.loads(line)["step"] <= step]
            log_path.write_text("".join(line + "\n" for line in kept))
    accelerator.wait_for_everyone()
    return step


def prune_checkpoints(out: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` checkpoints of a run (keep 0: none deleted); returns what was deleted."""
    found = _checkpoints(out)
    pruned = found[:-keep] if keep > 0 else []
    for old in pruned:
        shutil.rmtree(old)
    return pruned
