"""`train`: fit the embedded model and SyncNet, Diffusion-DPO on preference pairs, and make real-family folders.

Each command's options are its config dataclass's fields (train/config.py); torch, diffusers and
accelerate are imported only when a command runs.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli_kit.app import new_app, run
from cli_kit.options import command, save_run_config
from data_schemas import UserError
from train.config import CacheConfig, ConvertHallo4Config, DPOConfig, InitModelConfig, PretrainConfig, SyncNetConfig

app = new_app("Train the embedded model, and Diffusion-DPO on preference pairs.")


def _refuse_finished(out: Path, marker: str, resumable: bool = False) -> None:
    """Refuse an --out that holds a finished run or a model (its `marker` file): its files would be replaced by
    another run's, or mixed with them."""
    if (Path(out) / marker).is_file():
        raise UserError(f"--out {out}: holds a finished run or model ({marker}); choose another folder"
                        + (", or pass --resume to continue it" if resumable else ""))


def _new_run(config: PretrainConfig | DPOConfig) -> None:
    """Refuse a finished --out unless the run is resumed; then record this run's options."""
    if not config.resume:
        _refuse_finished(config.out, "family.json", resumable=True)
    save_run_config(config.out, config)


def pretrain(config: PretrainConfig) -> None:
    """Train the embedded denoiser on the world's ground-truth clips (runs under `accelerate launch` too)."""
    from train.pretrain import pretrain as run_pretrain

    _new_run(config)
    run_pretrain(config)
    typer.echo(f"model saved in {config.out}")


def _preferences(objective: str):
    def train(config: DPOConfig) -> None:
        from train.dpo import train_preferences

        _new_run(config)
        train_preferences(config, objective)
        typer.echo(f"model saved in {config.out} (sample from it with `pairs generate --model {config.out}`)")

    return train


def cache(config: CacheConfig) -> None:
    """Encode a dataset's clips and conditions once into a latent cache (resumable; split over processes)."""
    from train.cache_job import build_cache

    written = build_cache(config)
    typer.echo(f"{written} clips and conditions encoded into {config.out} (train on it: "
               f"`train dpo --dataset {config.dataset} --model {config.model} --cache {config.out} --out RUN`)")


def syncnet(config: SyncNetConfig) -> None:
    """Train the embedded SyncNet contrastively on in-sync vs audio-shifted world windows."""
    from syncnet.networks import WEIGHTS_FILE
    from train.syncnet_training import train_syncnet

    _refuse_finished(config.out, WEIGHTS_FILE)
    save_run_config(config.out, config)
    train_syncnet(config)
    typer.echo(f"SyncNet saved in {config.out} (score with it: `pairs score --syncnet-weights {config.out}`)")


def init_model(config: InitModelConfig) -> None:
    """Write a random-initialised model folder of a real family (no download)."""
    from model_families.wan_audio import init_model as write_model

    _refuse_finished(config.out, "family.json")
    write_model(config.size, config.out, config.seed)
    typer.echo(f"{config.family} {config.size} model saved in {config.out} (train it: "
               f"`train dpo --model {config.out} --dataset D --out RUN`)")


def convert_hallo4(config: ConvertHallo4Config) -> None:
    """Convert Hallo4's release into a wan-audio model folder and say what was carried."""
    from model_families.wan_audio import convert_hallo4 as convert

    _refuse_finished(config.out, "family.json")
    report = convert(config.weights, config.out, (config.height, config.width))
    typer.echo(f"wan-audio model saved in {config.out}")
    typer.echo(f"kept at initialisation (not in the checkpoint): {', '.join(report.fresh) or 'none'}")
    typer.echo(f"Hallo4 parts not carried (no input in this family): {', '.join(report.dropped) or 'none'}")


command(app, PretrainConfig, pretrain, "pretrain")
command(app, DPOConfig, _preferences("dpo"), "dpo",
        "Diffusion-DPO on exported preference pairs (policy vs frozen reference).")
command(app, DPOConfig, _preferences("sft"), "sft",
        "Fine-tune on the winners of exported pairs only: the baseline DPO must beat.")
command(app, CacheConfig, cache, "cache")
command(app, SyncNetConfig, syncnet, "syncnet")
command(app, InitModelConfig, init_model, "init-model")
command(app, ConvertHallo4Config, convert_hallo4, "convert-hallo4")


def main() -> None:
    """Console entry point of `train`."""
    run(app, "train")


if __name__ == "__main__":  # `accelerate launch -m train.cli …`
    main()
