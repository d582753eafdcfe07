import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import huggingface_hub
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from campaign.journal import JournalWriter
from campaign.store import Campaign
from campaign.marks import JOURNAL as MARKS
from data_schemas import SegmentMark, UserError, Vote
from data_schemas.dataset import max_shard_bytes, features, open_export
from pairs.preferences.build import BuildOptions, build_pairs
from pairs.export import check_hub_access, export_pairs, push_to_hub
from pairs.candidates.ingest import ingest_rows
from pairs.candidates.manifest import read_manifest
from train.preference_data import load_split, media_bytes

BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def private_datasets_cache(tmp_path, monkeypatch):
    """Parquet exports are read through the datasets cache: keep it in the test's folder, not the home one."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")


@pytest.fixture
def voted_campaign(tiny_world, tmp_path):
    campaign = Campaign.open(tmp_path / "campaign", create=True)
    ingest_rows(campaign, read_manifest(tiny_world)[0], progress=False)
    clips = campaign.table("clips").to_pylist()
    records, n = [], 0
    for condition in sorted({c["condition_id"] for c in clips}):
        shas = sorted(c["sha256"] for c in clips if c["condition_id"] == condition)
        for a, b in ((shas[0], shas[1]), (shas[2], shas[3])):
            for who in ("x", "y"):
                n += 1
                records += [Vote(showing_id=f"s{n}", request_id=f"r{n}", annotator=who, condition_id=condition,
                                 clip_a=a, clip_b=b, left="a", criterion=c, choice="a")
                            for c in ("lip_sync", "overall")]
    with JournalWriter(campaign.journal_path("votes"), Vote) as journal:
        journal.append(records)
    return campaign


def mark_losers(campaign, spans: dict[str, list[tuple[float, float]]]) -> None:
    """Append lip-sync marks on the rejected clip (clip b: every vote chose a) of the votes with these showing ids."""
    votes = {v["showing_id"]: v for v in campaign.table("votes").to_pylist() if v["criterion"] == "lip_sync"}
    records = [SegmentMark(showing_id=showing, request_id=votes[showing]["request_id"] if showing in votes else "r0",
                           annotator="x", condition_id="c", clip=votes.get(showing, votes["s1"])["clip_b"],
                           criterion="lip_sync", start_s=start, end_s=end)
               for showing, marks in spans.items() for start, end in marks]
    with JournalWriter(campaign.journal_path(MARKS), SegmentMark) as journal:
        journal.append(records)


@pytest.mark.parametrize("embed", [False, True])
def test_export_round_trips_through_load_from_disk(voted_campaign, tmp_path, embed):
    pairs = build_pairs(voted_campaign, BuildOptions(criterion="all", heldout=0.5, seed=1))
    out = tmp_path / "dataset"
    export_pairs(voted_campaign, pairs, out, embed_media=embed, parquet=False)
    loaded = datasets.load_from_disk(str(out))
    assert set(loaded) == {"train", "heldout"}
    assert len(loaded["train"]) + len(loaded["heldout"]) == pairs.num_rows == 8
    assert {r["condition_id"] for r in loaded["train"]}.isdisjoint({r["condition_id"] for r in loaded["heldout"]})
    row = loaded["train"][0]
    assert row["reference_image"].size == (64, 64)
    video = row["chosen_video"]
    data = video["bytes"] if embed else (out / video["path"]).read_bytes()
    clip = voted_campaign.table("clips").to_pylist()
    media = {c["sha256"]: c["media_path"] for c in clip}
    assert data == voted_campaign.media_file(media[row["chosen"]]).read_bytes()
    assert json.loads(row["labels"]) == {"lip_sync": row["chosen"], "overall": row["chosen"]}
    pose = row["pose"]["bytes"] if embed else (out / row["pose"]["path"]).read_bytes()
    assert pose.startswith(b"\x93NUMPY")
    assert loaded["train"].features == features()  # the columns data_schemas declares, and only those
    card = (out / "README.md").read_text()
    assert "| train |" in card and "| heldout |" in card and "| `chosen_video` | media |" in card


def test_cli_export_parquet_and_errors(voted_campaign, tmp_path):
    pairs_file = tmp_path / "pairs.parquet"
    pq.write_table(build_pairs(voted_campaign, BuildOptions(heldout=0.5)), pairs_file)
    run = lambda *args: subprocess.run([str(BIN / "pairs"), *args], capture_output=True, text=True, timeout=120)
    ok = run("export", "--campaign", str(voted_campaign.root), "--pairs", str(pairs_file), "--to-hf",
             str(tmp_path / "out"), "--format", "parquet", "--max-shard-size", "64MB")
    assert ok.returncode == 0, ok.stderr
    assert pq.read_table(tmp_path / "out" / "train.parquet").num_rows + pq.read_table(
        tmp_path / "out" / "heldout.parquet").num_rows == 4
    missing = run("export", "--campaign", str(voted_campaign.root), "--pairs", str(tmp_path / "nope.parquet"),
                  "--to-hf", str(tmp_path / "o2"))
    assert missing.returncode == 2 and "pairs file not found" in missing.stderr
    bad_size = run("export", "--campaign", str(voted_campaign.root), "--pairs", str(pairs_file), "--to-hf",
                   str(tmp_path / "o4"), "--max-shard-size", "lots")
    assert bad_size.returncode == 2 and "--max-shard-size lots: not a size" in bad_size.stderr
    # Offline, the push fails in one line before anything is exported (and the Hub is never called).
    offline = subprocess.run([str(BIN / "pairs"), "export", "--campaign", str(voted_campaign.root), "--pairs",
                              str(pairs_file), "--to-hf", str(tmp_path / "o3"), "--push-to-hub",
                              "someone/pairs"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
    errors = [line for line in offline.stderr.splitlines() if line.startswith("pairs: error:")]
    assert offline.returncode == 2 and len(errors) == 1 and "HF_HUB_OFFLINE is set" in errors[0]
    assert not (tmp_path / "o3").exists()


def test_a_missing_media_file_or_an_output_inside_the_campaign_is_refused_before_writing(voted_campaign, tmp_path):
    from typer.testing import CliRunner

    from pairs.cli import app

    pairs = build_pairs(voted_campaign, BuildOptions(heldout=0.5))
    pairs_file = tmp_path / "pairs.parquet"
    pq.write_table(pairs, pairs_file)
    inside = CliRunner().invoke(app, ["export", "--campaign", str(voted_campaign.root), "--pairs", str(pairs_file),
                                      "--to-hf", str(voted_campaign.root / "dataset")])
    assert isinstance(inside.exception, UserError) and "inside the campaign folder" in str(inside.exception)
    assert not (voted_campaign.root / "dataset").exists()
    built = CliRunner().invoke(app, ["build", "--campaign", str(voted_campaign.root), "--out",
                                     str(voted_campaign.root / "campaign.json")])
    assert isinstance(built.exception, UserError) and json.loads((voted_campaign.root / "campaign.json").read_text())
    clips = dict(zip(*voted_campaign.table("clips").select(["sha256", "media_path"]).to_pydict().values()))
    gone = voted_campaign.media_file(clips[pairs["chosen"][0].as_py()])
    gone.unlink()
    with pytest.raises(UserError, match=f"{gone}: media file missing from the campaign"):
        export_pairs(voted_campaign, pairs, tmp_path / "out", False, False)
    assert not (tmp_path / "out" / "media").exists()


def test_labels_gather_every_criterion_of_two_clips_and_another_campaigns_pairs_are_refused(voted_campaign, tmp_path):
    built = build_pairs(voted_campaign, BuildOptions(heldout=0.0))
    pairs = built.to_pylist()
    first = pairs[0]
    # The same two clips again for lip sync, reversed, twice: the later pair of a criterion is its label.
    again = [{**first, "pair_id": f"{first['pair_id']}-{n}", "criterion": "lip_sync", "chosen": first[winner],
              "rejected": first[loser]} for n, (winner, loser) in enumerate((("chosen", "rejected"),
                                                                              ("rejected", "chosen")))]
    table = pa.Table.from_pylist(pairs + again, schema=built.schema)
    export_pairs(voted_campaign, table, tmp_path / "out", embed_media=False, parquet=True)
    rows = {r["pair_id"]: r for r in pq.read_table(tmp_path / "out" / "train.parquet").to_pylist()}
    label = rows[first["pair_id"]]["labels"]
    assert label == json.dumps({first["criterion"]: first["chosen"], "lip_sync": first["rejected"]}, sort_keys=True)
    assert rows[again[0]["pair_id"]]["labels"] == label
    other = Campaign.open(tmp_path / "other", create=True)
    with pytest.raises(UserError, match=f"pair {first['pair_id']}: its clips or condition are not in {other.root}"):
        export_pairs(other, table, tmp_path / "o2", embed_media=False, parquet=False)
    assert not (tmp_path / "o2").exists()
    # A pairs file edited by hand: a split the dataset has no place for, a missing pair id: one line each, no output.
    for column, values, said in (("split", ["test"] + table["split"].to_pylist()[1:], "is in split 'test', not one of"),
                                 ("pair_id", [None] * table.num_rows, "columns do not fit the PreferencePair schema")):
        edited = table.set_column(table.column_names.index(column), column, pa.array(values, pa.string()))
        with pytest.raises(UserError, match=said):
            export_pairs(voted_campaign, edited, tmp_path / "o3", embed_media=False, parquet=False)
    assert not (tmp_path / "o3").exists()


def test_push_to_hub_needs_a_login(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(UserError, match="--push-to-hub me/pairs: no Hub login; run `huggingface-cli login`"):
        check_hub_access("me/pairs")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_x")
    check_hub_access("me/pairs")


def test_push_to_hub_embeds_the_media_without_being_asked(voted_campaign, tmp_path, monkeypatch):
    import pairs.export
    from pairs.cli import ExportOptions, export

    pushed = []
    monkeypatch.setattr(pairs.export, "check_hub_access", lambda repo: None)
    monkeypatch.setattr(pairs.export, "push_to_hub", lambda out, repo, size: pushed.append((out, repo)))
    pq.write_table(build_pairs(voted_campaign, BuildOptions(criterion="all", heldout=0.5, seed=1)),
                   tmp_path / "pairs.parquet")
    export(ExportOptions(campaign=voted_campaign.root, pairs=tmp_path / "pairs.parquet", to_hf=tmp_path / "out",
                         push_to_hub="me/pairs"))
    assert pushed == [(tmp_path / "out", "me/pairs")] and not (tmp_path / "out" / "media").exists()
    row = open_export(tmp_path / "out")["train"][0]
    assert media_bytes(str(tmp_path / "out"), row["chosen_video"], "chosen video")[:12].find(b"ftyp") == 4


def test_push_uploads_the_card_then_the_memory_mapped_export(voted_campaign, tmp_path, monkeypatch):
    calls = []

    class Api:  # stands in for the Hub: nothing here may reach the network
        def create_repo(self, repo, repo_type, exist_ok):
            calls.append(("create", repo, repo_type))

        def upload_file(self, path_or_fileobj, path_in_repo, repo_id, repo_type):
            calls.append(("card", Path(path_or_fileobj).read_text().splitlines()[0], path_in_repo))

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", lambda self, repo, max_shard_size: calls.append(
        ("push", repo, {k: len(v) for k, v in self.items()}, max_shard_size)))
    pairs = build_pairs(voted_campaign, BuildOptions(criterion="all", heldout=0.5, seed=1))
    export_pairs(voted_campaign, pairs, tmp_path / "out", embed_media=True, parquet=True)
    push_to_hub(tmp_path / "out", "me/pairs", 10**6)
    assert calls == [("create", "me/pairs", "dataset"), ("card", "# portrait-dpo preference pairs", "README.md"),
                     ("push", "me/pairs", {"train": 4, "heldout": 4}, 10**6)]


@pytest.mark.parametrize("parquet", [False, True])
def test_sharded_export_equals_one_shard_and_trains(voted_campaign, tmp_path, parquet):
    pairs = build_pairs(voted_campaign, BuildOptions(criterion="all", heldout=0.5, seed=1))
    export_pairs(voted_campaign, pairs, tmp_path / "one", embed_media=True, parquet=parquet)
    # A 4 kB limit is below one row (two embedded clips): every pair becomes a shard of its own.
    counts = export_pairs(voted_campaign, pairs, tmp_path / "many", embed_media=True, parquet=parquet,
                          max_shard_size=max_shard_bytes("4KB"))
    assert counts == {"train": 4, "heldout": 4}
    for split in ("train", "heldout"):
        shards = sorted((tmp_path / "many").glob(f"{split}-*.parquet" if parquet else f"{split}/data-*.arrow"))
        single = sorted((tmp_path / "one").glob(f"{split}*.parquet" if parquet else f"{split}/data-*.arrow"))
        assert len(shards) == 4 and len(single) == 1
        one, many = (open_export(tmp_path / name)[split].with_format("arrow")[:] for name in ("one", "many"))
        assert many.equals(one)  # same rows, same order, same columns and types
        part = load_split(str(tmp_path / "many"), split)
        assert part.features == features() and len(part) == 4
        row = next(iter(part))
        clip = dict(zip(*voted_campaign.table("clips").select(["sha256", "media_path"]).to_pydict().values()))
        assert media_bytes(str(tmp_path / "many"), row["rejected_video"], "rejected video") == \
            voted_campaign.media_file(clip[row["rejected"]]).read_bytes()
    assert not list((tmp_path / "many").glob(".export-*"))  # the scratch Arrow files are gone
    export_pairs(voted_campaign, pairs, tmp_path / "many", embed_media=True, parquet=parquet)  # again, one shard
    assert len(open_export(tmp_path / "many")["train"]) == 4  # no stale shard of the first export is read
    with pytest.raises(UserError, match="--max-shard-size 1.5GB: not a size; give a whole number"):
        max_shard_bytes("1.5GB")
    assert max_shard_bytes("64MiB") == 64 * 2**20 and max_shard_bytes("1GB") == 10**9


def test_an_empty_split_keeps_its_columns(voted_campaign, tmp_path):
    pairs = build_pairs(voted_campaign, BuildOptions(heldout=0.0))
    export_pairs(voted_campaign, pairs, tmp_path / "out", embed_media=False, parquet=False)
    loaded = datasets.load_from_disk(str(tmp_path / "out"))
    assert len(loaded["heldout"]) == 0 and loaded["heldout"].column_names == loaded["train"].column_names


def test_export_carries_the_marks_of_the_votes_that_decided_each_pair(voted_campaign, tmp_path):
    # s1 and s2 are x's and y's votes on the same clip pair; s999 was never a vote, so its mark counts nowhere.
    mark_losers(voted_campaign, {"s1": [(0.2, 0.6)], "s2": [(0.4, 1.0)], "s999": [(1.5, 2.0)]})
    pairs = build_pairs(voted_campaign, BuildOptions(criterion="all", heldout=0.0))
    export_pairs(voted_campaign, pairs, tmp_path / "out", embed_media=False, parquet=False)
    rows = datasets.load_from_disk(str(tmp_path / "out"))["train"].to_list()
    s1 = next(v for v in voted_campaign.table("votes").to_pylist() if v["showing_id"] == "s1")
    marked = [(r["criterion"], r["chosen_marks"], r["rejected_marks"]) for r in rows
              if (r["chosen"], r["rejected"]) == (s1["clip_a"], s1["clip_b"])]
    assert sorted(marked) == [("lip_sync", [], [[0.2, 1.0]]), ("overall", [], [])]
    assert sum(bool(r["rejected_marks"]) for r in rows) == 1 and not any(r["chosen_marks"] for r in rows)


def test_ranking_pairs_export_with_their_confidence_and_split(voted_campaign, tmp_path):
    options = BuildOptions(source="ranking", criterion="all", min_confidence=0.6, heldout=0.5, seed=1)
    pairs = build_pairs(voted_campaign, options)
    assert pairs.num_rows and set(pairs.column("source").to_pylist()) == {"ranking"}
    out = tmp_path / "dataset"
    export_pairs(voted_campaign, pairs, out, embed_media=False, parquet=True)
    loaded = open_export(out)
    rows = [r for split in loaded.values() for r in split]
    assert sorted((r["pair_id"], r["agreement"]) for r in rows) == sorted(
        zip(pairs.column("pair_id").to_pylist(), pairs.column("agreement").to_pylist()))
    assert all(0.6 <= r["agreement"] < 1 for r in rows)  # the posterior's confidence in each order
    assert {r["condition_id"] for r in loaded["train"]}.isdisjoint({r["condition_id"] for r in loaded["heldout"]})
