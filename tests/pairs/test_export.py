import json
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from campaign.journal import JournalWriter
from campaign.store import Campaign
from campaign.marks import JOURNAL as MARKS
from data_schemas import SegmentMark, Vote
from data_schemas.dataset import features
from pairs.preferences.build import BuildOptions, build_pairs
from pairs.export import export_pairs
from pairs.candidates.ingest import ingest_rows
from pairs.candidates.manifest import read_manifest

BIN = Path(sys.executable).parent


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
             str(tmp_path / "out"), "--format", "parquet")
    assert ok.returncode == 0, ok.stderr
    assert pq.read_table(tmp_path / "out" / "train.parquet").num_rows + pq.read_table(
        tmp_path / "out" / "heldout.parquet").num_rows == 4
    missing = run("export", "--campaign", str(voted_campaign.root), "--pairs", str(tmp_path / "nope.parquet"),
                  "--to-hf", str(tmp_path / "o2"))
    assert missing.returncode == 2 and "pairs file not found" in missing.stderr
    offline = run("export", "--campaign", str(voted_campaign.root), "--pairs", str(pairs_file), "--to-hf",
                  str(tmp_path / "o3"), "--push-to-hub", "someone/pairs")
    errors = [line for line in offline.stderr.splitlines() if line.startswith("pairs: error:")]
    assert offline.returncode == 2 and len(errors) == 1 and "upload failed" in errors[0]


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
