"""A damaged or deleted Parquet file of a campaign is one line that names it and how to get it back."""

import hashlib
import json
import shlex

import duckdb
import pyarrow as pa

from annotate.users import add_annotator
from campaign.damage import unreadable_parquet
from campaign.journal import JournalWriter, sealed_segments
from campaign.store import Campaign
from data_schemas import Clip, Vote
from bench.records_campaign import make_campaign
from tests.campaign.test_journal import votes
from tests.test_cli import run


def snapshot(campaign) -> dict[str, list]:
    return {name: sorted(map(str, campaign.table(name).to_pylist())) for name in ("conditions", "clips", "annotators")}


def test_a_damaged_or_deleted_table_snapshot_names_pairs_repair_which_republishes_it(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {f"c{i}": [None] * 3 for i in range(40)})
    add_annotator(campaign, "alice", "a-long-password")
    before = snapshot(campaign)
    damaged = campaign.table_files("clips")[3]
    for damage, program, args, path in (
            (lambda: damaged.write_bytes(b"junk"), "pairs", ("summary",), f"tables/clips/{damaged.name}"),
            ((campaign.root / "tables" / "annotators.parquet").unlink, "annotate", ("users", "list"),
             "tables/annotators.parquet")):
        damage()
        refused = run(program, *args, "--campaign", str(campaign.root))
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert f"{campaign.root}/{path}: cannot read it" in refused.stderr
        assert f"`pairs repair --campaign {campaign.root}`" in refused.stderr
    repaired = run("pairs", "repair", "--campaign", str(campaign.root))
    assert repaired.returncode == 0 and "clips 120 rows" in " ".join(repaired.stdout.split())
    assert snapshot(campaign) == before
    assert run("pairs", "summary", "--campaign", str(campaign.root)).returncode == 0


def test_a_deleted_partition_file_is_told_from_one_never_written_and_repair_writes_it_again(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {f"c{i}": [None] * 3 for i in range(40)})
    before = snapshot(campaign)
    lost = campaign.table_files("clips")[7]  # an incomplete copy, or a slip of the hand
    lost.unlink()
    refused = run("pairs", "summary", "--campaign", str(campaign.root))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith(f"pairs: error: {lost}: cannot read it (missing: 1 of the ")
    assert f"`pairs repair --campaign {campaign.root}`" in refused.stderr
    assert run("pairs", "repair", "--campaign", str(campaign.root)).returncode == 0
    assert lost.is_file() and snapshot(campaign) == before
    # A campaign written before the list is read as before, and listed at its next write (from the catalog).
    listed = campaign.root / "tables" / "clips" / "parts.json"
    parts = json.loads(listed.read_text())
    listed.unlink()
    assert snapshot(campaign) == before
    make_campaign_clip(campaign)
    assert set(json.loads(listed.read_text())) >= set(parts) and len(campaign.table("clips")) == 121
    listed.write_text("junk")  # a damaged list is a damaged snapshot file: named, and repair writes it again
    refused = run("pairs", "summary", "--campaign", str(campaign.root))
    assert refused.returncode == 1 and f"{listed}: cannot read it" in refused.stderr
    assert run("pairs", "repair", "--campaign", str(campaign.root)).returncode == 0
    assert len(campaign.table("clips")) == 121


def test_a_partition_a_write_empties_while_it_is_read_is_not_taken_for_a_missing_one(tmp_path, monkeypatch):
    campaign = make_campaign(tmp_path / "campaign", {f"c{i}": [None] * 3 for i in range(4)})
    gone = campaign.table("clips").column("sha256")[0].as_py()
    listed = Campaign._listed_parts

    def then_a_writer_empties_one(self, table):  # the reader has read the list; another process writes
        parts = listed(self, table)
        monkeypatch.setattr(Campaign, "_listed_parts", listed)
        with Campaign(campaign.root).write("clips") as con:
            con.execute("DELETE FROM clips WHERE sha256 = ?", [gone])
        return parts

    monkeypatch.setattr(Campaign, "_listed_parts", then_a_writer_empties_one)
    assert len(Campaign(campaign.root).table_files("clips")) == 11
    assert len(campaign.table("clips")) == 11


def test_a_twin_without_its_json_lines_and_a_folder_for_the_partition_list_say_what_to_do(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {f"c{i}": [None] * 3 for i in range(4)})
    with JournalWriter(campaign.journal_path("votes"), Vote, segment_bytes=1) as journal:
        for showing in ("s1", "s2", "s3"):
            journal.append(votes(showing))
    segment = sealed_segments(campaign.journal_path("votes"))[0]
    segment.unlink()
    segment.with_suffix(".parquet").write_bytes(b"junk")
    refused = run("pairs", "summary", "--campaign", str(campaign.root))
    assert refused.returncode == 1 and "segment-000001.jsonl are gone too: restore either from the copy or backup" \
        in " ".join(refused.stderr.split())
    segment.with_suffix(".parquet").unlink()
    segment.write_bytes(b"")  # given up, as the error about both files gone offers
    listed = campaign.root / "tables" / "clips" / "parts.json"
    listed.unlink()
    listed.mkdir()
    refused = run("pairs", "repair", "--campaign", str(campaign.root))
    assert refused.returncode == 2 and f"{listed}: a folder where the list of the table's partitions belongs; " \
        f"move it out of the way and run `pairs repair --campaign {campaign.root}`" in " ".join(refused.stderr.split())
    listed.rmdir()
    assert run("pairs", "repair", "--campaign", str(campaign.root)).returncode == 0
    assert run("pairs", "summary", "--campaign", str(campaign.root)).returncode == 0


def make_campaign_clip(campaign) -> None:
    """One more clip, in a condition of its own, written as `pairs ingest` writes: one partition republished."""
    template = campaign.table("clips").slice(0, 1).to_pylist()[0]
    digest = hashlib.sha256(b"one more").hexdigest()
    campaign.add_clips([Clip(**{**template, "sha256": digest, "media_path": f"media/{digest[:2]}/{digest}.mp4"})])


def test_repair_from_a_catalog_older_than_the_tables_refuses_and_changes_nothing(tmp_path):
    import shutil

    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 3})
    add_annotator(campaign, "alice", "a-long-password")
    shutil.copy(campaign.root / "catalog.duckdb", tmp_path / "backup.duckdb")
    add_annotator(campaign, "bob", "another-long-password")
    before = snapshot(campaign)
    shutil.copy(tmp_path / "backup.duckdb", campaign.root / "catalog.duckdb")  # restored from before bob
    refused = run("pairs", "repair", "--campaign", str(campaign.root))
    assert refused.returncode == 2 and "annotators.parquet: holds 1 annotators rows that the campaign's " \
        "catalog.duckdb lacks" in " ".join(refused.stderr.split())
    assert snapshot(campaign) == before


def test_the_remedy_names_the_campaign_whatever_its_path_holds(tmp_path):
    campaign = make_campaign(tmp_path / "tables" / "bob's \"camp\"", {f"c{i}": [None] * 3 for i in range(40)})
    damaged = campaign.table_files("clips")[0]
    damaged.write_bytes(b"junk")
    refused = run("pairs", "summary", "--campaign", str(campaign.root))
    assert refused.returncode == 1 and refused.stderr.startswith(f"pairs: error: {damaged}: cannot read it")
    assert f"`pairs repair --campaign {shlex.quote(str(campaign.root))}`" in refused.stderr
    assert run("pairs", "repair", "--campaign", str(campaign.root)).returncode == 0
    (campaign.root / "tables" / "annotators.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")  # inside
    for program, args in (("annotate", ("users", "list")), ("pairs", ("summary",))):
        refused = run(program, *args, "--campaign", str(campaign.root))
        assert refused.returncode == 1 and "annotators.parquet: cannot read it" in refused.stderr, refused.stderr


def test_repair_without_the_catalog_refuses_and_leaves_the_snapshots(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 3})
    before = snapshot(campaign)
    (campaign.root / "catalog.duckdb").unlink()
    refused = run("pairs", "repair", "--campaign", str(campaign.root))
    assert refused.returncode == 2 and "catalog.duckdb: missing; restore it" in refused.stderr
    assert snapshot(campaign) == before and not (campaign.root / "catalog.duckdb").exists()


def test_a_damaged_journal_twin_is_to_be_deleted_and_its_json_lines_are_read_instead(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 3})
    with JournalWriter(campaign.journal_path("votes"), Vote, segment_bytes=1) as journal:
        for showing in ("s1", "s2", "s3"):
            journal.append(votes(showing))
    twin = sealed_segments(campaign.journal_path("votes"))[0].with_suffix(".parquet")
    twin.write_bytes(b"junk")
    refused = run("pairs", "summary", "--campaign", str(campaign.root))
    assert refused.returncode == 1 and f"{twin}: cannot read it" in refused.stderr
    assert "delete it, and segment-000001.jsonl beside it is read instead" in refused.stderr
    twin.unlink()
    assert campaign.table("votes").column("showing_id").to_pylist() == [s for s in ("s1", "s2", "s3") for _ in range(4)]


def test_a_damaged_shard_part_is_to_be_deleted_and_redone(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 3})
    part = campaign.root / "shards" / "score" / "rank-1" / "0123abcd"
    part.mkdir(parents=True)
    (part / "scores.parquet").write_bytes(b"junk")
    said = unreadable_parquet(OSError(f"Could not open Parquet input source '{part / 'scores.parquet'}': short"))
    assert said.endswith(f"this is a part of a sharded `pairs score` run, not merged yet: delete its folder {part} "
                         "and run `pairs score` again (it redoes that part's work)")


def test_damage_inside_a_file_is_one_line_and_pairs_repair_mends_tables_and_twins(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {f"c{i}": [None] * 3 for i in range(40)})
    add_annotator(campaign, "alice", "a-long-password")
    with JournalWriter(campaign.journal_path("votes"), Vote, segment_bytes=1) as journal:
        for showing in ("s1", "s2", "s3"):
            journal.append(votes(showing))
    before = snapshot(campaign)
    twin = sealed_segments(campaign.journal_path("votes"))[1].with_suffix(".parquet")
    for damaged in (campaign.table_files("clips")[5], twin):
        data = bytearray(damaged.read_bytes())
        data[8:len(data) - 8] = bytes(len(data) - 16)  # the pages and the footer's metadata zeroed, the magic kept
        damaged.write_bytes(bytes(data))
    refused = run("pairs", "summary", "--campaign", str(campaign.root))
    # One line: the file where a reader names it, else DuckDB's reason (the damage surfaced mid-query)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1 and "`pairs repair --campaign" in refused.stderr
    repaired = run("pairs", "repair", "--campaign", str(campaign.root))
    assert repaired.returncode == 0, repaired.stderr
    said = "".join(repaired.stdout.split())  # rich wraps long paths at their slashes
    assert f"{twin}:unreadable,deleted;segment-000002.jsonlbesideitisreadinstead" in said
    assert snapshot(campaign) == before and not twin.exists()
    assert campaign.table("votes").column("showing_id").to_pylist() == [s for s in ("s1", "s2", "s3") for _ in range(4)]
    assert run("pairs", "summary", "--campaign", str(campaign.root)).returncode == 0


def test_repair_says_which_snapshot_rows_the_catalog_holds_otherwise(tmp_path):
    import shutil

    from annotate.users import disable_annotator

    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 3})
    add_annotator(campaign, "alice", "a-long-password")
    shutil.copy(campaign.root / "catalog.duckdb", tmp_path / "backup.duckdb")
    disable_annotator(campaign, "alice")
    shutil.copy(tmp_path / "backup.duckdb", campaign.root / "catalog.duckdb")  # restored from before
    repaired = run("pairs", "repair", "--campaign", str(campaign.root))
    said = " ".join(repaired.stdout.split())
    assert repaired.returncode == 0 and "annotators: 1 rows of the old snapshot differed from the catalog's" in said


def test_only_failures_to_read_a_parquet_file_are_recognised(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 3})
    gone = campaign.root / "tables" / "clips" / "part-zz.parquet"
    assert unreadable_parquet(FileNotFoundError(2, "No such file", str(gone))).startswith(
        f"{gone}: cannot read it (missing); this is a table snapshot")
    assert unreadable_parquet(pa.ArrowInvalid("Could not open Parquet input source 'out/d.parquet': bad")) == (
        "out/d.parquet: cannot read it (Could not open Parquet input source it: bad); restore it from a backup, or "
        "write it again")
    for not_a_read in (FileNotFoundError(2, "No such file", "out/pairs.parquet"),  # a write into a missing folder
                       OSError("[Errno 30] Failed to open local file '/mnt/ro/pairs.parquet'. Read-only file system"),
                       OSError("404 Client Error for url: https://hub/train-00000.parquet"),
                       duckdb.BinderException("column x not found"), ValueError("'a.parquet'")):
        assert unreadable_parquet(not_a_read) is None, not_a_read
