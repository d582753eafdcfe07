"""Conditions, clips and scores are published in partitions: a write replaces only the partitions its rows fall in."""

import hashlib
import json

import pyarrow.parquet as pq

from campaign.store import PARTITIONS, Campaign
from data_schemas import Score

SHAS = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(40)]


def score(sha: str, value: float = 1.0) -> Score:
    return Score(clip=sha, scorer="sync", scorer_version="1", metric="lse_c", value=value)


def stamps(campaign: Campaign) -> dict[str, int]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in campaign.table_files("scores")}


def test_a_write_republishes_only_the_partitions_of_its_rows_and_readers_see_all_rows(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    assert campaign.table_files("scores") == [] and campaign.table("scores").num_rows == 0
    campaign.add_scores([score(sha) for sha in SHAS])
    parts = {f"part-{sha[:2]}.parquet" for sha in SHAS}
    assert {p.name for p in campaign.table_files("scores")} == parts
    before = stamps(campaign)
    campaign.add_scores([score(SHAS[0], 2.0), score(SHAS[1], 2.0)])
    after = stamps(campaign)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {f"part-{SHAS[0][:2]}.parquet", f"part-{SHAS[1][:2]}.parquet"}
    assert pq.read_table(campaign.table_files("scores")[0]).num_rows >= 1
    values = dict(campaign.connect().execute("SELECT clip, value FROM scores").fetchall())
    assert values == {sha: 2.0 if sha in SHAS[:2] else 1.0 for sha in SHAS}
    assert campaign.table("scores").num_rows == len(SHAS)


def test_a_view_sees_partitions_published_after_it_was_made(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    campaign.add_scores([score(SHAS[0])])
    con = campaign.connect()
    campaign.add_scores([score(sha) for sha in SHAS[1:]])
    assert con.execute("SELECT count(*) FROM scores").fetchall() == [(len(SHAS),)]


def test_a_format_1_campaign_is_upgraded_on_open(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    campaign.add_scores([score(sha) for sha in SHAS])
    # Format 1: each table one file.
    for table in PARTITIONS:
        files = campaign.table_files(table)
        if files:
            pq.write_table(pq.read_table(files), campaign.root / "tables" / f"{table}.parquet")
        for f in files:
            f.unlink()
    (campaign.root / "campaign.json").write_text(json.dumps({"format": 1}) + "\n")
    upgraded = Campaign.open(campaign.root)
    assert json.loads((campaign.root / "campaign.json").read_text()) == {"format": 2}
    assert not any((campaign.root / "tables" / f"{table}.parquet").exists() for table in PARTITIONS)
    assert sorted(upgraded.table("scores").column("clip").to_pylist()) == sorted(SHAS)
