"""`pairs export`: preference pairs + their media as a Hugging Face dataset (or plain Parquet shards).

The columns are declared once in data_schemas/dataset.py; media are embedded as bytes with `--embed-media`,
else copied under the output folder's media/ and referenced by relative path.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import datasets
import pyarrow as pa

from campaign.store import Campaign
from data_schemas import Condition, PreferencePair, UserError, conform, from_table
from data_schemas.dataset import COLUMNS, features

SPLITS = ("train", "heldout")


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


def pair_rows(campaign: Campaign, pairs: list[PreferencePair], media: _Media) -> dict[str, list[dict]]:
    """Rows per split, media resolved."""
    clips = dict(zip(*campaign.table("clips").select(["sha256", "media_path"]).to_pydict().values()))
    conditions = {c.condition_id: c for c in from_table(campaign.table("conditions"), Condition)}
    labels = _labels(pairs)
    rows: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for pair in pairs:
        if pair.chosen not in clips or pair.rejected not in clips or pair.condition_id not in conditions:
            raise UserError(f"pair {pair.pair_id}: its clips or condition are not in {campaign.root}; "
                            "build the pairs from this campaign")
        condition = conditions[pair.condition_id]
        rows[pair.split].append({
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
        })
    return rows


def export_pairs(campaign: Campaign, pairs: pa.Table, out: Path, embed_media: bool, parquet: bool,
                 source: str = "pairs") -> datasets.DatasetDict:
    """Write the dataset to `out` (save_to_disk, or Parquet shards per split) with a dataset card."""
    records = from_table(conform(pairs, PreferencePair, source), PreferencePair)
    if not records:
        raise UserError(f"{source}: no pairs to export; build some with `pairs build`")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = pair_rows(campaign, records, _Media(campaign, out, embed_media))
    # from_dict, not from_list: an empty split must still carry every column.
    columns = features()
    dataset = datasets.DatasetDict({
        split: datasets.Dataset.from_dict({name: [r[name] for r in split_rows] for name in columns}, features=columns)
        for split, split_rows in rows.items()
    })
    if parquet:
        for split, part in dataset.items():
            part.to_parquet(str(out / f"{split}.parquet"))
    else:
        dataset.save_to_disk(str(out), num_shards={split: 1 for split in dataset})  # one shard, even if empty
    (out / "README.md").write_text(dataset_card(dataset, records, embed_media), encoding="utf-8")
    return dataset


def dataset_card(dataset: datasets.DatasetDict, pairs: list[PreferencePair], embedded: bool) -> str:
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
    lines += ["", "## Features", "", "```", str(dataset["train"].features), "```", ""]
    return "\n".join(lines)


def push_to_hub(dataset: datasets.DatasetDict, repo: str) -> None:
    """Upload to the Hub; offline or logged out is one clear error."""
    try:
        dataset.push_to_hub(repo)
    except Exception as exc:  # noqa: BLE001 - network and auth failures surface in many types
        raise UserError(f"--push-to-hub {repo}: upload failed ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                        "check the network and `huggingface-cli login`") from None
