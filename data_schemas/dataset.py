"""The exported preference dataset's columns and layout: what `pairs export` writes and `train` / `evaluate` read.

Media columns are {bytes, path} structs (the layout of the `Audio`/`Video` features before decoding): bytes
filled with `--embed-media`, else a path relative to the dataset folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from data_schemas.errors import UserError
from data_schemas.records import PreferencePair

if TYPE_CHECKING:  # datasets loads only when features are built
    import datasets

# column → (kind, meaning); kinds: string, float64, int64, bool, strings (a list), spans (a list of
# [start_s, end_s]), image, media ({bytes, path}).
# A column that is a PreferencePair field takes its meaning from the record (one place for each sentence).
_PAIR_DOCS = {f.name: f.metadata["doc"] for f in dataclasses.fields(PreferencePair)}
_KINDS = {
    "pair_id": "string", "condition_id": "string", "criterion": "string", "source": "string", "chosen": "string",
    "rejected": "string", "margin": "float64", "votes": "int64", "agreement": "float64", "annotators": "strings",
    "scores_disagree": "bool", "labels": "string", "chosen_scores": "string", "rejected_scores": "string",
    "chosen_marks": "spans", "rejected_marks": "spans",
    "reference_image": "image", "audio": "media", "pose": "media", "chosen_video": "media", "rejected_video": "media",
}
_OWN_DOCS = {
    "labels": "JSON: for each criterion decided on the same clip pair, which clip won",
    "chosen_scores": "JSON: " + _PAIR_DOCS["chosen_scores"],
    "rejected_scores": "JSON: " + _PAIR_DOCS["rejected_scores"],
    "reference_image": "The reference face",
    "audio": "The driving audio",
    "pose": "Head pose .npy float32 [frames, 3] yaw/pitch/roll in radians, or null",
    "chosen_video": "The preferred clip (mp4 with its audio)",
    "rejected_video": "The other clip (mp4 with its audio)",
}
COLUMNS: dict[str, tuple[str, str]] = {name: (kind, _OWN_DOCS.get(name) or _PAIR_DOCS[name])
                                       for name, kind in _KINDS.items()}
# The splits an export has (held out by condition, pairs.preferences.build).
SPLITS = ("train", "heldout")
# The largest shard (Arrow file or Parquet file) an export writes unless told otherwise: datasets' own default.
DEFAULT_MAX_SHARD_SIZE = "500MB"
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30,
          "TIB": 2**40}
# The columns a trainer or the report cannot do without.
TRAINING_COLUMNS = ("condition_id", "chosen", "rejected", "reference_image", "audio", "chosen_video", "rejected_video")


def features() -> "datasets.Features":
    """COLUMNS as Hugging Face dataset features."""
    import datasets

    media = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    kinds = {"strings": datasets.Sequence(datasets.Value("string")), "image": datasets.Image(), "media": media,
             "spans": datasets.Sequence(datasets.Sequence(datasets.Value("float64")))}
    return datasets.Features({name: kinds.get(kind) or datasets.Value(kind) for name, (kind, _) in COLUMNS.items()})


def max_shard_bytes(text: str) -> int:
    """--max-shard-size in bytes: '500MB', '64MiB', '1GB' (decimal or binary units); else a one-line UserError."""
    number = text.strip().rstrip("bBiIkKmMgGtT")
    unit = text.strip()[len(number):].upper()
    if not number.isdigit() or unit not in _UNITS or int(number) == 0:
        raise UserError(f"--max-shard-size {text}: not a size; give a whole number and a unit, e.g. 500MB or 1GB")
    return int(number) * _UNITS[unit]


def open_export(folder: str | Path) -> datasets.DatasetDict:
    """A `pairs export` folder, memory-mapped, never read whole: save_to_disk's Arrow shards as they are, or its
    Parquet shards (`split.parquet`, `split-00000.parquet`, …) converted once into the datasets cache."""
    import datasets

    folder = Path(folder)
    if (folder / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(folder))
    files = {split: [str(p) for p in parquet_shards(folder, split)] for split in SPLITS}
    if not any(files.values()):
        raise FileNotFoundError(f"no dataset_dict.json nor train*.parquet in {folder}")
    return datasets.load_dataset("parquet", data_files={s: f for s, f in files.items() if f}, features=features())


def parquet_shards(folder: Path, split: str) -> list[Path]:
    """A split's Parquet files in an export, in order: `split.parquet`, or `split-00000.parquet`, …"""
    return sorted([*folder.glob(f"{split}.parquet"), *folder.glob(f"{split}-[0-9][0-9][0-9][0-9][0-9].parquet")])
