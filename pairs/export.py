"""`pairs export`: preference pairs + their media as a Hugging Face dataset (or plain Parquet shards).

The columns are declared once in data_schemas/dataset.py; media are embedded as bytes with `--embed-media`,
else copied under the output folder's media/ and referenced by relative path.

A split is streamed, never held whole: the pairs stay in Arrow, their rows are made one at a time (each row's
media read as it is made) and written by `datasets` in small batches to an Arrow file in a scratch folder beside
the output, which is then cut into shards of at most `max_shard_size` bytes (save_to_disk, or one Parquet file
per shard).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import datasets
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from campaign.store import Campaign
from data_schemas import PreferencePair, UserError, conform, from_table
from data_schemas.dataset import (COLUMNS, DEFAULT_MAX_SHARD_SIZE, SPLITS, features, max_shard_bytes, open_export,
                                  parquet_shards)

# Rows per written batch when media are embedded: a few clips' bytes at a time, the batch size datasets
# itself uses for video. Paths only: datasets' default (1000 small rows).
_EMBEDDED_BATCH_ROWS = 10
# Pairs made into Python records at a time (their JSON parsed, then made into rows): a million pairs stay in
# Arrow; media paths turned into Python strings at a time for the check that every file is there.
_BATCH_PAIRS = 1024
_BATCH_PATHS = 10_000


class _Media:
    """Puts campaign media into the export: as bytes, or copied beside it under media/."""

    def __init__(self, campaign: Campaign, out: Path, embed: bool) -> None:
        self.campaign, self.out, self.embed = campaign, out, embed

    def __call__(self, relative: str) -> dict:
        source = self.campaign.media_file(relative)
        if self.embed:
            return {"bytes": source.read_bytes(), "path": source.name}
        dest = self.out / "media" / source.name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        return {"bytes": None, "path": f"media/{source.name}"}


def _labels(pairs: pa.Table) -> pa.ChunkedArray:
    """Per pair, its two clips' verdicts over every criterion, [{criterion, chosen}] (where pairs repeat a criterion
    for the same two clips, the later one's): gathered by DuckDB, so no Python object per pair until its row."""
    with contextlib.closing(duckdb.connect()) as con:
        con.register("pairs", pairs.select(["chosen", "rejected", "criterion"]).append_column(
            "row", pa.array(np.arange(pairs.num_rows))))
        return con.sql("""
            WITH keyed AS (SELECT row, least(chosen, rejected) AS lo, greatest(chosen, rejected) AS hi, criterion,
                                  chosen FROM pairs),
                 latest AS (SELECT lo, hi, criterion, arg_max(chosen, row) AS chosen FROM keyed
                            GROUP BY lo, hi, criterion),
                 labels AS (SELECT lo, hi, list(struct_pack(criterion, chosen)) AS labels FROM latest GROUP BY lo, hi)
            SELECT labels FROM keyed JOIN labels USING (lo, hi) ORDER BY row""").to_arrow_table()["labels"]


def _media_paths(campaign: Campaign, pairs: pa.Table) -> Callable[[int, pa.BooleanArray], list[dict]]:
    """Per pair, the campaign paths of its clips and its condition's media: a function of a batch (its first pair
    and which of its `_BATCH_PAIRS` pairs are wanted) that gives them as rows. UserError for a pair whose clips or
    condition the campaign lacks, or whose media file is missing, before anything is written. Looked up in Arrow
    (`index_in`), not in dicts of a million clips, and kept as indices until a batch asks (five path strings per
    pair would hold ~300 MiB at a million pairs)."""
    with contextlib.closing(campaign.connect(journals=False)) as con:
        clips = con.sql("SELECT sha256, media_path FROM clips").to_arrow_table()
        conditions = con.sql("SELECT condition_id, reference_image, audio, pose FROM conditions").to_arrow_table()
    chosen, rejected = (pc.index_in(pairs[side], value_set=clips["sha256"]) for side in ("chosen", "rejected"))
    condition = pc.index_in(pairs["condition_id"], value_set=conditions["condition_id"])
    unknown = pc.or_(pc.or_(pc.is_null(chosen), pc.is_null(rejected)), pc.is_null(condition))
    if pc.any(unknown).as_py():
        raise UserError(f"pair {pairs['pair_id'].filter(unknown)[0].as_py()}: its clips or condition are not in "
                        f"{campaign.root}; build the pairs from this campaign")
    media = ("reference_image", "audio", "pose")
    used_clips = pc.unique(pa.chunked_array([*chosen.chunks, *rejected.chunks]))
    used_conditions = pc.unique(condition)
    needed = pc.unique(pa.concat_arrays([column.take(used).combine_chunks().cast(pa.string()) for column, used in (
        (clips["media_path"], used_clips), *((conditions[name], used_conditions) for name in media))]))
    missing = sorted(path for start in range(0, len(needed), _BATCH_PATHS)
                     for path in needed.slice(start, _BATCH_PATHS).to_pylist()
                     if path and not campaign.media_file(path).is_file())
    if missing:
        raise UserError(f"{campaign.media_file(missing[0])}: media file missing from the campaign ({len(missing)} in "
                        "all); restore the media folder, or ingest those clips again and rebuild the pairs")

    def paths(start: int, wanted: pa.BooleanArray) -> list[dict]:
        def at(index: pa.ChunkedArray) -> pa.Array:
            return index.slice(start, _BATCH_PAIRS).filter(wanted)

        return pa.table({"chosen_video": clips["media_path"].take(at(chosen)),
                         "rejected_video": clips["media_path"].take(at(rejected)),
                         **{name: conditions[name].take(at(condition)) for name in media}}).to_pylist()

    return paths


def pair_rows(campaign: Campaign, pairs: pa.Table, media: _Media) -> dict[str, Iterator[dict]]:
    """Rows per split from the pairs (an Arrow table of PreferencePair), each made (its media resolved) only when
    the writer asks for it, from records made `_BATCH_PAIRS` at a time.

    Every pair is checked first, so a pair from another campaign, or one whose media file is missing from the
    campaign, fails before anything is written."""
    paths = _media_paths(campaign, pairs)
    labels = _labels(pairs)

    def rows(split: str) -> Iterator[dict]:
        for start in range(0, pairs.num_rows, _BATCH_PAIRS):  # batch by batch: no copy of a split's pairs
            in_split = pc.equal(pairs["split"].slice(start, _BATCH_PAIRS), split)
            records = from_table(pairs.slice(start, _BATCH_PAIRS).filter(in_split), PreferencePair)
            where = paths(start, in_split)
            gathered = labels.slice(start, _BATCH_PAIRS).filter(in_split).to_pylist()
            for pair, at, label in zip(records, where, gathered):
                yield {
                    "pair_id": pair.pair_id, "condition_id": pair.condition_id, "criterion": pair.criterion,
                    "source": pair.source, "chosen": pair.chosen, "rejected": pair.rejected, "margin": pair.margin,
                    "votes": pair.votes, "agreement": pair.agreement, "annotators": pair.annotators,
                    "scores_disagree": pair.scores_disagree,
                    "labels": json.dumps({k["criterion"]: k["chosen"] for k in label}, sort_keys=True),
                    "chosen_scores": json.dumps(pair.chosen_scores, sort_keys=True),
                    "rejected_scores": json.dumps(pair.rejected_scores, sort_keys=True),
                    "chosen_marks": pair.chosen_marks, "rejected_marks": pair.rejected_marks,
                    "reference_image": str(campaign.media_file(at["reference_image"])),
                    "audio": media(at["audio"]),
                    "pose": media(at["pose"]) if at["pose"] else None,
                    "chosen_video": media(at["chosen_video"]),
                    "rejected_video": media(at["rejected_video"]),
                }

    return {split: rows(split) for split in SPLITS}


def _streamed(rows: Iterator[dict], split: str, scratch: Path, batch_rows: int | None) -> datasets.Dataset:
    """The rows written in batches to an Arrow file under `scratch`, memory-mapped back (an empty split keeps
    every column)."""
    first = next(rows, None)
    if first is None:  # datasets' generator builder refuses a split without rows
        return datasets.Dataset.from_dict({name: [] for name in features()}, features=features(), split=split)
    # The fingerprint names the cache entry: a fixed one skips hashing the generator's closure (the campaign).
    return datasets.Dataset.from_generator(lambda: itertools.chain([first], rows), features=features(),
                                           cache_dir=str(scratch), split=split, fingerprint=f"pairs-export-{split}",
                                           writer_batch_size=batch_rows)


def shard_count(part: datasets.Dataset, max_shard_size: int) -> int:
    """Shards of at most `max_shard_size` bytes by the Arrow size (the reference images that save_to_disk embeds
    are small beside the clips), one per row at most; an empty split still gets one, so it keeps its columns."""
    return max(1, min(len(part), math.ceil(part.data.nbytes / max_shard_size)))


def parquet_files(out: Path, split: str, shards: int) -> list[Path]:
    """`split.parquet` for one shard, else `split-00000.parquet`, … (the names data_schemas.dataset.parquet_shards
    reads, and split names the Hub recognises)."""
    return [out / f"{split}.parquet"] if shards == 1 else [out / f"{split}-{i:05d}.parquet" for i in range(shards)]


def export_pairs(campaign: Campaign, pairs: pa.Table, out: Path, embed_media: bool, parquet: bool,
                 source: str = "pairs", max_shard_size: int = max_shard_bytes(DEFAULT_MAX_SHARD_SIZE),
                 ) -> dict[str, int]:
    """Write the dataset to `out` (save_to_disk, or Parquet shards per split) with a dataset card; pairs per split."""
    pairs = conform(pairs, PreferencePair, source)
    if pairs.num_rows == 0:
        raise UserError(f"{source}: no pairs to export; build some with `pairs build`")
    elsewhere = pc.invert(pc.is_in(pairs["split"], value_set=pa.array(SPLITS)))
    if pc.any(elsewhere).as_py():
        raise UserError(f"{source}: pair {pairs['pair_id'].filter(elsewhere)[0].as_py()} is in split "
                        f"{pairs['split'].filter(elsewhere)[0].as_py()!r}, not one of {', '.join(SPLITS)}; "
                        "fix its split or build the pairs again")
    for start in range(0, pairs.num_rows, _BATCH_PAIRS):  # every record's JSON parsed before anything is written
        from_table(pairs.slice(start, _BATCH_PAIRS), PreferencePair)
    out = Path(out)
    rows = pair_rows(campaign, pairs, _Media(campaign, out, embed_media))  # checks every pair: nothing made before
    out.mkdir(parents=True, exist_ok=True)
    batch_rows = _EMBEDDED_BATCH_ROWS if embed_media else None
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as scratch:
        dataset = datasets.DatasetDict({split: _streamed(split_rows, split, Path(scratch), batch_rows)
                                        for split, split_rows in rows.items()})
        shards = {split: shard_count(part, max_shard_size) for split, part in dataset.items()}
        if parquet:
            for split, part in dataset.items():
                for stale in parquet_shards(out, split):  # from an earlier export cut into other shards
                    stale.unlink()
                for i, path in enumerate(parquet_files(out, split, shards[split])):
                    part.shard(shards[split], i, contiguous=True).to_parquet(str(path), batch_size=batch_rows)
        else:
            dataset.save_to_disk(str(out), num_shards=shards)
        (out / "README.md").write_text(dataset_card(pairs, embed_media), encoding="utf-8")
        return {split: len(part) for split, part in dataset.items()}


def dataset_card(pairs: pa.Table, embedded: bool) -> str:
    """README.md of the export: counts, agreement, schema and the command that made it."""
    lines = ["# portrait-dpo preference pairs", "", f"Made by `{shlex.join(['pairs', *sys.argv[1:]])}`.", "",
             "| split | pairs | conditions | mean agreement |", "| --- | --- | --- | --- |"]
    counted = pairs.select(["split", "condition_id", "agreement"])  # not every column filtered once per split
    for split in SPLITS:
        chosen = counted.filter(pc.equal(counted["split"], split))
        # Python's left-to-right sum, as the card always added: Arrow's pairwise sum may flip the third decimal
        agreement = sum(chosen["agreement"].to_pylist()) / chosen.num_rows if chosen.num_rows else float("nan")
        lines.append(f"| {split} | {chosen.num_rows} | {pc.count_distinct(chosen['condition_id']).as_py()} | "
                     f"{agreement:.3f} |")
    by_kind = pairs.group_by(["source", "criterion"]).aggregate([([], "count_all")]).to_pylist()
    lines += ["", "| source | criterion | pairs |", "| --- | --- | --- |"]
    lines += [f"| {k['source']} | {k['criterion']} | {k['count_all']} |"
              for k in sorted(by_kind, key=lambda k: (k["source"], k["criterion"]))]
    lines += ["", f"Media are {'embedded as bytes' if embedded else 'files under media/, paths relative to here'}.",
              "", "## Columns", "", "| column | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {kind} | {meaning} |" for name, (kind, meaning) in COLUMNS.items()]
    lines += ["", "## Features", "", "```", str(features()), "```", ""]
    return "\n".join(lines)


def check_hub_access(repo: str) -> None:
    """Fail in one line, before any export or upload work, when an upload to `repo` cannot succeed."""
    import huggingface_hub

    flag = f"--push-to-hub {repo}"
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise UserError(f"{flag}: HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it to push")
    if huggingface_hub.get_token() is None:
        raise UserError(f"{flag}: no Hub login; run `huggingface-cli login` or set HF_TOKEN")


def push_to_hub(out: Path, repo: str, max_shard_size: int) -> None:
    """Upload the export in `out` to the Hub repository `repo`, its dataset card as the repository's README."""
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo, repo_type="dataset", exist_ok=True)
        # push_to_hub keeps the body of a README already in the repository and adds its metadata above it.
        api.upload_file(path_or_fileobj=str(Path(out) / "README.md"), path_in_repo="README.md", repo_id=repo,
                        repo_type="dataset")
        open_export(Path(out)).push_to_hub(repo, max_shard_size=max_shard_size)
    except Exception as exc:  # noqa: BLE001 - network and auth failures surface in many types
        raise UserError(f"--push-to-hub {repo}: upload failed ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                        "check the network and `huggingface-cli login`") from None
