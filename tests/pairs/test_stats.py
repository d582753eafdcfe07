import duckdb
import krippendorff
import numpy as np
import pyarrow as pa
import pytest

from pairs.preferences.agreement import vote_alpha
from pairs.stats import auc, bootstrap_bradley_terry, bradley_terry


def test_bradley_terry_recovers_a_known_strength_gap_with_a_ci():
    rng = np.random.default_rng(0)
    # player 0 beats player 1 with probability 0.8, so log-strength gap log(4)
    wins0 = rng.random(2000) < 0.8
    winners = np.where(wins0, 0, 1)
    losers = 1 - winners
    strength, low, high = bootstrap_bradley_terry(winners, losers, 2, samples=100)
    gap = strength[0] - strength[1]
    assert gap == pytest.approx(np.log(4), abs=0.15)
    assert low[0] < strength[0] < high[0] and high[1] < low[0]


def test_bradley_terry_orders_three_players():
    winners = np.array([0] * 30 + [1] * 30 + [0] * 20 + [2] * 5 + [1] * 10 + [2] * 10)
    losers = np.array([1] * 30 + [0] * 30 + [2] * 20 + [0] * 5 + [2] * 10 + [1] * 10)
    strength = bradley_terry(winners, losers, 3)
    assert strength[0] > strength[1] > strength[2]
    assert strength.mean() == pytest.approx(0.0, abs=1e-9)


def test_auc_matches_pairwise_counting():
    rng = np.random.default_rng(1)
    pos, neg = rng.integers(0, 5, 40).astype(float), rng.integers(0, 4, 30).astype(float)
    expected = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auc(pos, neg) == pytest.approx(expected)


def test_alpha_equals_the_krippendorff_package_on_the_same_matrix():
    rng = np.random.default_rng(2)
    rows = []
    for item in range(30):
        truth = rng.choice(["a", "b"])
        for annotator in ("x", "y", "z"):
            if rng.random() < 0.2:
                continue  # not everyone judges everything
            choice = truth if rng.random() < 0.8 else rng.choice(["a", "b", "tie", "both_bad"])
            rows.append((f"i{item}", annotator, choice))
    votes = pa.table({"clip_a": [r[0] for r in rows], "clip_b": ["z"] * len(rows), "annotator": [r[1] for r in rows],
                      "criterion": ["overall"] * len(rows), "choice": [r[2] for r in rows],
                      "created_at": list(range(len(rows)))})
    codes = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}
    matrix = np.full((3, 30), np.nan)
    for item, annotator, choice in rows:
        matrix["xyz".index(annotator), int(item[1:])] = codes[choice]
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    con = duckdb.connect()
    con.register("votes", votes)
    assert vote_alpha(con, "votes", "overall") == pytest.approx(expected)


def test_stats_on_a_campaign_with_votes_and_scores(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from annotate.service import AnnotationService
    from data_schemas import AnnotationTask, Score
    from syncnet.lse import NO_SYNC_PEAK
    from bench.records_campaign import make_campaign, sha

    campaign = make_campaign(tmp_path / "c", {f"c{i}": [None] * 3 for i in range(4)})
    value = {sha(f"c{c}/{i}"): i for c in range(4) for i in range(3)}  # clip i of each condition scores i
    marked = {sha(f"c3/{i}") for i in range(3)}  # scored the wrong way round, but marked: they must not count
    campaign.add_scores([Score(clip=s, scorer="sync", scorer_version="1", metric="lse_c",
                               value=float(-v if s in marked else v),
                               details={"mark": NO_SYNC_PEAK} if s in marked else {}) for s, v in value.items()])
    service = AnnotationService(campaign, AnnotationTask(overlap=2, gold_rate=0.0))
    for annotator in ("x", "y"):
        n = 0
        while (showing := service.next_showing(annotator)) is not None:
            a_wins = value[showing.item.clip_a] > value[showing.item.clip_b]
            better = "left" if a_wins == (showing.left == "a") else "right"  # answers are as shown
            service.submit(annotator, showing.showing_id, f"{annotator}{n}", {c: better for c in service.criteria})
            n += 1
    service.close()
    result = subprocess.run([str(Path(sys.executable).parent / "pairs"), "stats", "--campaign", str(campaign.root),
                             "--json", "--by", "seed", "--bootstrap", "20"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["alpha"]["overall"] == pytest.approx(1.0)
    assert {a["annotator"]: a["agreement_with_majority"] for a in report["annotators"]} == {"x": 1.0, "y": 1.0}
    sync = next(a for a in report["auto_scores"] if a["score"] == "sync/lse_c" and a["criterion"] == "overall")
    assert sync["accuracy"] == 1.0 and sync["auc"] > 0.8 and sync["pairs"] == 9  # c3's 3 pairs left out
    assert [s["name"] for s in report["strengths"]] == ["2", "1", "0"]  # clip i has seed i and score i


def test_winner_agreement_follows_the_scores_better_direction():
    from pairs.stats import winner_agreement

    winner, loser = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 1.0, 4.0, 4.0])  # lower in 2 of 4, one tie
    assert winner_agreement(winner, loser, higher_is_better=False)["accuracy"] == pytest.approx(2.5 / 4)
    assert winner_agreement(winner, loser, higher_is_better=True)["accuracy"] == pytest.approx(1.5 / 4)
    assert winner_agreement(winner, loser, higher_is_better=None) == winner_agreement(winner, loser, True)
