"""`pairs export`: preference pairs + their media as a Hugging Face dataset (or plain Parquet shards).

The columns are declared once in data_schemas/dataset.py; media are embedded as bytes with `--embed-media`,
else copied under the output folder's media/ and referenced by relative path.

A split is streamed, never held whole: its rows are made one at a time (each row's media read as it is made)
and written by `datasets` in small batches to an Arrow file in a scratch folder beside the output, which is
then cut into shards of at most `max_shard_size` bytes (save_to_disk, or one Parquet file per shard).
"""

from __future__ import annotations

import itertools
import json
import math
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import datasets
import pyarrow as pa

from campaign.store import Campaign
from data_schemas import Condition, PreferencePair, UserError, conform, from_table
from data_schemas.dataset import (COLUMNS, DEFAULT_MAX_SHARD_SIZE, SPLITS, features, max_shard_bytes, open_export,
                                  parquet_shards)

# Rows per written batch when media are embedded: a few clips' bytes at a time, the batch size datasets
# itself uses for video. Paths only: datasets' default (1000 small rows).
_EMBEDDED_BATCH_ROWS = 10


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


def _labels(pairs: list[PreferencePair]) -> dict[tuple[str, str], dict[str, str]]:
    labels: dict[tuple[str, str], dict[str, str]] = {}
    for pair in pairs:
        labels.setdefault(tuple(sorted((pair.chosen, pair.rejected))), {})[pair.criterion] = pair.chosen
    return labels


def pair_rows(campaign: Campaign, pairs: list[PreferencePair], media: _Media) -> dict[str, Iterator[dict]]:
    """Rows per split, each made (its media resolved) only when the writer asks for it.

    Every pair is checked first, so a pair from another campaign, or one whose media file is missing from the
    campaign, fails before anything is written."""
    clips = dict(zip(*campaign.table("clips").select(["sha256", "media_path"]).to_pydict().values()))
    conditions = {c.condition_id: c for c in from_table(campaign.table("conditions"), Condition)}
    for pair in pairs:
        if pair.chosen not in clips or pair.rejected not in clips or pair.condition_id not in conditions:
            raise UserError(f"pair {pair.pair_id}: its clips or condition are not in {campaign.root}; "
                            "build the pairs from this campaign")
    needed = {clips[p.chosen] for p in pairs} | {clips[p.rejected] for p in pairs}
    for condition in (conditions[c] for c in {p.condition_id for p in pairs}):
        needed |= {condition.reference_image, condition.audio} | ({condition.pose} if condition.pose else set())
    missing = sorted(path for path in needed if not campaign.media_file(path).is_file())
    if missing:
        raise UserError(f"{campaign.media_file(missing[0])}: media file missing from the campaign ({len(missing)} in "
                        "all); restore the media folder, or ingest those clips again and rebuild the pairs")
    labels = _labels(pairs)

    def rows(split: str) -> Iterator[dict]:
        for pair in (p for p in pairs if p.split == split):
            condition = conditions[pair.condition_id]
            yield {
                "pair_id": pair.pair_id, "condition_id": pair.condition_id, "criterion": pair.criterion,
                "source": pair.source, "chosen": pair.chosen, "rejected": pair.rejected, "margin": pair.margin,
                "votes": pair.votes, "agreement": pair.agreement, "annotators": pair.annotators,
                "scores_disagree": pair.scores_disagree,
                "labels": json.dumps(labels[tuple(sorted((pair.chosen, pair.rejected)))], sort_keys=True),
                "chosen_scores": json.dumps(pair.chosen_scores, sort_keys=True),
                "rejected_scores": json.dumps(pair.rejected_scores, sort_keys=True),
                "chosen_marks": pair.chosen_marks, "rejected_marks": pair.rejected_marks,
                "reference_image": str(campaign.media_file(condition.reference_image)),
                "audio": media(condition.audio),
                "pose": media(condition.pose) if condition.pose else None,
                "chosen_video": media(clips[pair.chosen]),
                "rejected_video": media(clips[pair.rejected]),
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
    records = from_table(conform(pairs, PreferencePair, source), PreferencePair)
    if not records:
        raise UserError(f"{source}: no pairs to export; build some with `pairs build`")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = pair_rows(campaign, records, _Media(campaign, out, embed_media))
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
        (out / "README.md").write_text(dataset_card(records, embed_media), encoding="utf-8")
        return {split: len(part) for split, part in dataset.items()}


def dataset_card(pairs: list[PreferencePair], embedded: bool) -> str:
    """README.md of the export: counts, agreement, schema and the command that made it."""
    lines = ["# portrait-dpo preference pairs", "", f"Made by `{shlex.join(['pairs', *sys.argv[1:]])}`.", "",
             "| split | pairs | conditions | mean agreement |", "| --- | --- | --- | --- |"]
    for split in SPLITS:
        chosen = [p for p in pairs if p.split == split]
        agreement = sum(p.agreement for p in chosen) / len(chosen) if chosen else float("nan")
        lines.append(f"| {split} | {len(chosen)} | {len({p.condition_id for p in chosen})} | {agreement:.3f} |")
    by_kind: dict[tuple[str, str], int] = {}
    for pair in pairs:
        by_kind[(pair.source, pair.criterion)] = by_kind.get((pair.source, pair.criterion), 0) + 1
    lines += ["", "| source | criterion | pairs |", "| --- | --- | --- |"]
    lines += [f"| {s} | {c} | {n} |" for (s, c), n in sorted(by_kind.items())]
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
