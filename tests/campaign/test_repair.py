"""A damaged or deleted Parquet file of a campaign is one line that names it and how to get it back."""

import duckdb
import pyarrow as pa

from annotate.users import add_annotator
from campaign.damage import unreadable_parquet
from campaign.journal import JournalWriter, sealed_segments
from data_schemas import Vote
from tests.annotate.conftest import make_campaign
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


def test_only_failures_to_read_a_parquet_file_are_recognised():
    assert unreadable_parquet(FileNotFoundError(2, "No such file", "a/tables/x.parquet")).startswith(
        "a/tables/x.parquet: cannot read it (missing); this is a table snapshot")
    assert unreadable_parquet(pa.ArrowInvalid("Could not open Parquet input source 'out/d.parquet': bad")) == (
        "out/d.parquet: cannot read it (Could not open Parquet input source it: bad); restore it from a backup, or "
        "write it again")
    assert unreadable_parquet(duckdb.BinderException("column x not found")) is None
    assert unreadable_parquet(FileNotFoundError(2, "No such file", "a/model.safetensors")) is None
    assert unreadable_parquet(ValueError("'a.parquet'")) is None
