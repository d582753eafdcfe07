"""`train`: fit the embedded model and the embedded SyncNet, and Diffusion-DPO on preference pairs."""

from __future__ import annotations

from pathlib import Path

import typer

from annotate.cli_app import new_app, run
from data_schemas import UserError
from train.config import DPOConfig, PretrainConfig, SyncNetConfig
from train.targets import PREDICTION_TYPES

app = new_app("Train the embedded model, and Diffusion-DPO on preference pairs.")
_DEFAULT = PretrainConfig(out=Path("."))


@app.command()
def pretrain(
    out: Path = typer.Option(..., help="Folder for the model, checkpoints/ and train_log.jsonl."),
    world: Path | None = typer.Option(None, help="World folder from `pairs world` (its in-sync clips)."),
    conditions: int = typer.Option(_DEFAULT.conditions, min=1, help="Clips to render in memory without --world."),
    world_seed: int = typer.Option(_DEFAULT.world_seed, help="Seed of the rendered world."),
    seconds: float = typer.Option(_DEFAULT.seconds, min=0.5, help="Length of each rendered clip."),
    steps: int = typer.Option(_DEFAULT.steps, min=1, help="Optimiser steps."),
    batch_size: int = typer.Option(_DEFAULT.batch_size, min=1, help="Clips per step."),
    window: int = typer.Option(_DEFAULT.window, min=4, help="Video frames per training clip (multiple of 4)."),
    lr: float = typer.Option(_DEFAULT.lr, help="AdamW learning rate."),
    prediction_type: str = typer.Option(_DEFAULT.prediction_type, help="epsilon, v_prediction or flow."),
    seed: int = typer.Option(_DEFAULT.seed, help="Seed of batches, noise and timesteps."),
    checkpoint_every: int = typer.Option(_DEFAULT.checkpoint_every, min=1, help="Steps between checkpoints."),
    mixed_precision: str | None = typer.Option(None, help="no, bf16 or fp16 (default: accelerate's config, else no)."),
    resume: bool = typer.Option(False, help="Continue from the newest checkpoint in OUT/checkpoints."),
) -> None:
    """Train the embedded denoiser on the world's ground-truth clips (runs under `accelerate launch` too)."""
    # torch, diffusers and accelerate take seconds to import: only training pays for them.
    from train.pretrain import pretrain as run_pretrain

    if prediction_type not in PREDICTION_TYPES:
        raise UserError(f"--prediction-type {prediction_type}: choose from {', '.join(PREDICTION_TYPES)}")
    if world is not None and not world.is_dir():
        raise UserError(f"--world {world}: folder not found; render one with `pairs world --out {world}`")
    run_pretrain(PretrainConfig(
        out=out, world=world, conditions=conditions, world_seed=world_seed, seconds=seconds, steps=steps,
        batch_size=batch_size, window=window, lr=lr, prediction_type=prediction_type, seed=seed,
        checkpoint_every=checkpoint_every, mixed_precision=mixed_precision, resume=resume,
    ))
    typer.echo(f"model saved in {out}")


_DPO = DPOConfig(dataset="", out=Path("."))


def _preference_command(objective: str):
    def command(
        dataset: str = typer.Option(..., help="Folder from `pairs export` (or a Hub dataset id)."),
        out: Path = typer.Option(..., help="Folder for the model, checkpoints/ and metrics.jsonl."),
        model: str = typer.Option(_DPO.model, help="Model folder from `train pretrain`, or embedded."),
        beta: float = typer.Option(_DPO.beta, help="DPO: KL strength β."),
        loss: str = typer.Option(_DPO.loss, help="DPO: sigmoid, hinge or ipo."),
        lr: float = typer.Option(_DPO.lr, help="AdamW learning rate."),
        steps: int = typer.Option(_DPO.steps, min=1, help="Optimiser steps."),
        batch_size: int = typer.Option(_DPO.batch_size, min=1, help="Pairs per micro-batch."),
        grad_accum: int = typer.Option(_DPO.grad_accum, min=1, help="Micro-batches per optimiser step."),
        window: int = typer.Option(_DPO.window, min=4, help="Video frames per training clip (multiple of 4)."),
        weight_by: str = typer.Option(_DPO.weight_by, help="DPO: per-pair weights from none, agreement, margin."),
        mixed_precision: str | None = typer.Option(
            None, help="no, bf16 or fp16 (default: accelerate's config, else no)."),
        gradient_checkpointing: bool = typer.Option(False, help="Trade compute for memory."),
        lora_rank: int = typer.Option(0, min=0, help="Train LoRA adapters of this rank (0: full fine-tune)."),
        checkpoint_every: int = typer.Option(_DPO.checkpoint_every, min=1, help="Steps between checkpoints."),
        seed: int = typer.Option(_DPO.seed, help="Seed of batches, noise and timesteps."),
        resume: bool = typer.Option(False, help="Continue from the newest checkpoint in OUT/checkpoints."),
    ) -> None:
        from train.dpo import train_preferences

        train_preferences(DPOConfig(
            dataset=dataset, out=out, model=model, beta=beta, loss=loss, lr=lr, steps=steps, batch_size=batch_size,
            grad_accum=grad_accum, window=window, weight_by=weight_by, seed=seed, checkpoint_every=checkpoint_every,
            mixed_precision=mixed_precision, gradient_checkpointing=gradient_checkpointing, lora_rank=lora_rank,
            resume=resume,
        ), objective)
        typer.echo(f"model saved in {out} (sample from it with `pairs generate --model {out}`)")

    return command


app.command("dpo", help="Diffusion-DPO on exported preference pairs (policy vs frozen reference).")(
    _preference_command("dpo"))
app.command("sft", help="Fine-tune on the winners of exported pairs only: the baseline DPO must beat.")(
    _preference_command("sft"))


_SYNC = SyncNetConfig(out=Path("."))


@app.command()
def syncnet(
    out: Path = typer.Option(..., help="Folder for model.safetensors, config.json and train_log.jsonl."),
    conditions: int = typer.Option(_SYNC.conditions, min=1, help="In-sync world clips to train on."),
    world_seed: int = typer.Option(_SYNC.world_seed, help="Seed of the rendered world."),
    seconds: float = typer.Option(_SYNC.seconds, min=1.0, help="Length of each clip."),
    steps: int = typer.Option(_SYNC.steps, min=1, help="Optimiser steps."),
    batch_size: int = typer.Option(_SYNC.batch_size, min=1, help="Windows per step (each in sync and shifted)."),
    lr: float = typer.Option(_SYNC.lr, help="Adam learning rate."),
    seed: int = typer.Option(_SYNC.seed, help="Seed of the batches and the initial weights."),
) -> None:
    """Train the embedded SyncNet contrastively on in-sync vs audio-shifted world windows."""
    from train.syncnet import train_syncnet

    train_syncnet(SyncNetConfig(out=out, conditions=conditions, world_seed=world_seed, seconds=seconds, steps=steps,
                                batch_size=batch_size, lr=lr, seed=seed))
    typer.echo(f"SyncNet saved in {out} (score with it: `pairs score --syncnet-weights {out}`)")


def main() -> None:
    """Console entry point of `train`."""
    run(app, "train")


if __name__ == "__main__":  # `accelerate launch -m train.cli …`
    main()
