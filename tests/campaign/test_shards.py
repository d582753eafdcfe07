from campaign.shards import merge_shards, write_part
from campaign.store import Campaign
from data_schemas import Score
from tests.campaign.test_store import SHA, condition


def score(value, clip=SHA):
    return Score(clip=clip, scorer="sync", scorer_version="1", metric="lse_c", value=value)


def test_parts_are_merged_once_in_order_and_removed(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    write_part(campaign, "score", 0, {"conditions": [condition("c1")], "scores": [score(1.0)]})
    write_part(campaign, "score", 1, {"conditions": [condition("c1"), condition("c2")], "scores": [score(2.0, "d" * 64)]})
    torn = campaign.root / "shards" / "score" / "rank-1" / ".tmp-torn"
    torn.mkdir()
    assert campaign.table("conditions").num_rows == 0  # parts are not in the catalog until merged
    assert merge_shards(campaign) == {"conditions": 2, "scores": 2}
    assert sorted(campaign.table("conditions").column("condition_id").to_pylist()) == ["c1", "c2"]
    assert sorted(campaign.table("scores").column("value").to_pylist()) == [1.0, 2.0]
    assert [p.name for p in (campaign.root / "shards").rglob("*") if p.parent.name.startswith("rank-")] == [".tmp-torn"]
    assert merge_shards(campaign) == {}  # nothing left to merge
