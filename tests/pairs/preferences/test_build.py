import json

import pytest

from campaign.journal import JournalWriter
from data_schemas import Rating, Score, UserError, Vote
from pairs.preferences.build import BuildOptions, build_pairs, heldout_conditions
from bench.records_campaign import make_campaign, sha

CRITS = ("lip_sync", "expression", "motion", "overall")


@pytest.fixture
def campaign(tmp_path):
    return make_campaign(tmp_path / "c", {f"c{i}": [None] * 3 for i in range(10)})


def clip(condition, i):
    return sha(f"{condition}/{i}")


def add_votes(campaign, rows):
    """rows: (condition, i, j, annotator, choice) — choice about clip i vs j for every criterion."""
    records = []
    for n, (condition, i, j, annotator, choice) in enumerate(rows):
        a, b = sorted([clip(condition, i), clip(condition, j)])
        if choice in ("i", "j"):
            winner = clip(condition, i) if choice == "i" else clip(condition, j)
            choice = "a" if winner == a else "b"
        records += [Vote(showing_id=f"s{n}", request_id=f"r{n}", annotator=annotator, condition_id=condition,
                         clip_a=a, clip_b=b, left="a", criterion=c, choice=choice) for c in CRITS]
    with JournalWriter(campaign.journal_path("votes"), Vote) as journal:
        journal.append(records)


def test_ab_pairs_carry_their_evidence_and_scores(campaign):
    add_votes(campaign, [("c0", 0, 1, "x", "i"), ("c0", 0, 1, "y", "i"), ("c0", 0, 1, "z", "j"),
                         ("c1", 0, 1, "x", "tie"), ("c1", 0, 1, "y", "tie")])
    campaign.add_scores([Score(clip=clip("c0", 0), scorer="sync", scorer_version="1", metric="lse_c", value=2.0),
                         Score(clip=clip("c0", 1), scorer="sync", scorer_version="1", metric="lse_c", value=5.0)])
    pairs = build_pairs(campaign, BuildOptions(heldout=0.0)).to_pylist()
    assert len(pairs) == 1  # the tie in c1 is not a pair
    pair = pairs[0]
    assert (pair["chosen"], pair["rejected"]) == (clip("c0", 0), clip("c0", 1))
    assert (pair["votes"], pair["source"], pair["annotators"]) == (3, "human", ["x", "y", "z"])
    assert pair["agreement"] == pytest.approx(2 / 3)
    assert json.loads(pair["chosen_scores"]) == {"sync/lse_c": 2.0}
    assert pair["scores_disagree"] is True  # humans chose the clip with the lower sync score
    assert len(build_pairs(campaign, BuildOptions(min_agreement=0.7, heldout=0.0))) == 0
    assert len(build_pairs(campaign, BuildOptions(criterion="all", heldout=0.0))) == 4


def test_rating_pairs_best_vs_worst_with_gap(campaign):
    records = []
    for n, (i, score) in enumerate([(0, 5), (1, 3), (2, 1), (0, 4), (2, 2)]):
        records += [Rating(showing_id=f"s{n}", request_id=f"r{n}", annotator=f"a{n}", condition_id="c0",
                           clip=clip("c0", i), criterion=c, score=score) for c in ("lip_sync", "overall")]
    with JournalWriter(campaign.journal_path("ratings"), Rating) as journal:
        journal.append(records)
    options = BuildOptions(source="rating", criterion="overall", heldout=0.0)
    pairs = build_pairs(campaign, options).to_pylist()
    assert [(p["chosen"], p["rejected"], p["margin"]) for p in pairs] == [(clip("c0", 0), clip("c0", 2), 3.0)]
    assert build_pairs(campaign, BuildOptions(source="rating", criterion="overall", min_gap=3.5, heldout=0.0)
                       ).num_rows == 0
    both = build_pairs(campaign, BuildOptions(source="rating", criterion="all", heldout=0.0)).to_pylist()
    assert sorted({p["criterion"] for p in both}) == ["lip_sync", "mean", "overall"]


def test_auto_and_hybrid_pairs(campaign):
    campaign.add_scores([Score(clip=clip("c2", i), scorer="sync", scorer_version="1", metric="lse_c", value=v)
                         for i, v in enumerate([1.0, 4.0, 4.5])])
    auto = build_pairs(campaign, BuildOptions(source="auto", criterion="lip_sync", min_gap=1.0, heldout=0.0))
    assert sorted((p["chosen"], p["rejected"]) for p in auto.to_pylist()) == sorted(
        [(clip("c2", 1), clip("c2", 0)), (clip("c2", 2), clip("c2", 0))])
    assert set(auto.column("source").to_pylist()) == {"auto"}
    add_votes(campaign, [("c2", 0, 2, "x", "i")])
    hybrid = build_pairs(campaign, BuildOptions(source="hybrid", criterion="lip_sync", min_gap=1.0, heldout=0.0))
    rows = {(p["source"], p["chosen"], p["rejected"]) for p in hybrid.to_pylist()}
    assert rows == {("human", clip("c2", 0), clip("c2", 2)), ("auto", clip("c2", 1), clip("c2", 0))}
    human = next(p for p in hybrid.to_pylist() if p["source"] == "human")
    assert human["scores_disagree"] is True


def test_split_is_by_condition_deterministic_and_never_leaks(campaign):
    rows = [(f"c{k}", 0, 1, "x", "i") for k in range(10)] + [(f"c{k}", 1, 2, "y", "j") for k in range(10)]
    add_votes(campaign, rows)
    first = build_pairs(campaign, BuildOptions(heldout=0.3, seed=4)).to_pylist()
    again = build_pairs(campaign, BuildOptions(heldout=0.3, seed=4)).to_pylist()
    assert first == again
    held = {p["condition_id"] for p in first if p["split"] == "heldout"}
    train = {p["condition_id"] for p in first if p["split"] == "train"}
    assert len(held) == 3 and held.isdisjoint(train)
    assert heldout_conditions([f"c{k}" for k in range(10)], 0.3, 5) != held


def test_auto_pairs_need_the_score_to_exist(campaign):
    with pytest.raises(UserError, match="--auto-score sync/lse_c: the campaign has no such scores"):
        build_pairs(campaign, BuildOptions(source="auto", criterion="lip_sync"))


def test_build_takes_the_auto_score_direction_from_the_scorers(tmp_path):
    from typer.testing import CliRunner

    from pairs.cli import app

    from campaign.store import Campaign

    Campaign.open(tmp_path / "c", create=True)
    result = CliRunner().invoke(app, ["build", "--campaign", str(tmp_path / "c"), "--out", str(tmp_path / "p.parquet"),
                                      "--auto-score", "sync/offset"])
    assert isinstance(result.exception, UserError) and "no better direction" in str(result.exception)


def ranking(campaign, **options):
    """The ranking pairs of criterion overall, keyed by (chosen, rejected) as clip numbers of their condition."""
    pairs = build_pairs(campaign, BuildOptions(source="ranking", heldout=0.0, **options)).to_pylist()
    number = {clip(c, i): i for c in {p["condition_id"] for p in pairs} for i in range(3)}
    return {(p["condition_id"], number[p["chosen"]], number[p["rejected"]]): p for p in pairs}


def test_ranking_orders_a_pair_nobody_voted_on_by_transitivity(campaign):
    add_votes(campaign, [("c0", 0, 1, f"u{k}", "i") for k in range(6)] + [("c0", 1, 2, f"v{k}", "i") for k in range(6)])
    pairs = ranking(campaign, ranking_prior="none")
    assert set(pairs) == {("c0", 0, 1), ("c0", 1, 2), ("c0", 0, 2)}  # ab exports only the two voted pairs
    assert build_pairs(campaign, BuildOptions(heldout=0.0)).num_rows == 2
    unvoted = pairs["c0", 0, 2]
    assert (unvoted["source"], unvoted["votes"], unvoted["annotators"]) == ("ranking", 0, [])
    voted = pairs["c0", 0, 1]
    assert (voted["votes"], voted["annotators"]) == (6, [f"u{k}" for k in range(6)])
    # the unasked pair is the surest: both votes' evidence adds up on it; agreement carries the confidence
    assert unvoted["agreement"] > voted["agreement"] >= 0.9 and unvoted["margin"] > voted["margin"] > 0
    # the threshold: between the two confidences only the unvoted pair is left, above both none
    between = (voted["agreement"] + unvoted["agreement"]) / 2
    assert set(ranking(campaign, ranking_prior="none", min_confidence=between)) == {("c0", 0, 2)}
    assert all(p["agreement"] >= between for p in ranking(campaign, ranking_prior="none", min_confidence=between)
               .values())
    assert ranking(campaign, ranking_prior="none", min_confidence=min(1.0, unvoted["agreement"] + 1e-6)) == {}
    assert ranking(campaign, ranking_prior="none", min_votes=13) == {}  # the condition has 12 votes


def test_ranking_leaves_retracted_votes_out(campaign):
    from data_schemas import Retraction

    add_votes(campaign, [("c1", 0, 1, f"u{k}", "j") for k in range(8)])
    add_votes(campaign, [("c1", 0, 1, f"v{k}", "i") for k in range(8)])
    assert ranking(campaign, ranking_prior="none") == {}  # 8 against 8: no order
    with JournalWriter(campaign.journal_path("retractions"), Retraction) as journal:
        journal.append([Retraction(showing_id=f"s{k}", annotator=f"v{k}", journal="votes") for k in range(8)])
    pairs = ranking(campaign, ranking_prior="none")
    assert set(pairs) == {("c1", 1, 0)} and pairs["c1", 1, 0]["votes"] == 8


def test_ranking_prior_is_the_auto_scores_unless_none(campaign):
    add_votes(campaign, [("c2", 0, 1, f"u{k}", "i") for k in range(4)] + [("c2", 0, 1, "t", "tie")])
    campaign.add_scores([Score(clip=clip("c2", i), scorer="sync", scorer_version="1", metric="lse_c_at_0", value=v)
                         for i, v in enumerate([9.0, 1.0, 5.0])])
    with_prior = ranking(campaign, min_confidence=0.6)
    votes_only = ranking(campaign, ranking_prior="none", min_confidence=0.6)
    assert set(votes_only) == {("c2", 0, 1)}  # clip 2 has no votes: nothing orders it
    assert with_prior["c2", 0, 1]["agreement"] > votes_only["c2", 0, 1]["agreement"]  # the scores agree
    assert ("c2", 2, 1) in with_prior  # clip 2's score ranks it above clip 1
    # at 0.95 four votes and a tie are not enough alone; with the scores agreeing they are
    assert ranking(campaign, ranking_prior="none", min_confidence=0.95) == {}
    assert set(ranking(campaign, min_confidence=0.95)) == {("c2", 0, 1)}


@pytest.mark.parametrize("flags, message", [
    (["--min-confidence", "0.5"], "--min-confidence 0.5: a probability that the order is right; give one above 0.5"),
    (["--min-confidence", "1.5"], "--min-confidence 1.5"),
    (["--ranking-prior", "scores"], "--ranking-prior scores: choose from auto, none"),
])
def test_ranking_options_are_checked_in_one_line(tmp_path, flags, message):
    from typer.testing import CliRunner

    from campaign.store import Campaign
    from pairs.cli import app

    Campaign.open(tmp_path / "c", create=True)
    result = CliRunner().invoke(app, ["build", "--campaign", str(tmp_path / "c"), "--out", str(tmp_path / "p.parquet"),
                                      "--from", "ranking", *flags])
    assert isinstance(result.exception, UserError) and str(result.exception).startswith(message)
    assert "\n" not in str(result.exception)


def test_a_ranking_build_says_which_criteria_start_from_a_flat_prior(campaign, tmp_path):
    from typer.testing import CliRunner

    from pairs.cli import app
    from pairs.preferences.bradley_terry import missing_prior_note
    from syncnet.lse import NO_SYNC_PEAK

    def scores(condition: str, metric: str, **details) -> list[Score]:
        scorer, _, name = metric.partition("/")
        return [Score(clip=clip(condition, i), scorer=scorer, scorer_version="1", metric=name, value=float(i),
                      details=details) for i in range(3)]

    def build(*flags: str) -> str:
        said = CliRunner().invoke(app, ["build", "--campaign", str(campaign.root), "--out", str(tmp_path / "p.parquet"),
                                        "--from", "ranking", *flags], terminal_width=400)
        assert said.exit_code == 0, said.output
        return said.output

    add_votes(campaign, [("c0", 0, 1, "u1", "i")])
    # scored before lse_c_at_0 existed, and where SyncNet found no peak
    campaign.add_scores(scores("c0", "sync/lse_c") + scores("c0", "motion/jitter")
                        + scores("c1", "sync/lse_c_at_0", mark=NO_SYNC_PEAK))
    where = campaign.root
    assert missing_prior_note(campaign, CRITS) == (
        f"every clip's sync/lse_c_at_0, the prior of lip_sync, overall, is marked (`pairs scores --campaign {where}` "
        f"says why); no clip has expression/mouth_audio, the prior of expression (`pairs score --campaign {where}` "
        "writes it): those criteria start from a flat prior")
    assert "--ranking-prior auto: every clip's sync/lse_c_at_0, the prior of overall, is marked" in build()
    assert "flat prior" not in build("--ranking-prior", "none")
    campaign.add_scores(scores("c2", "sync/lse_c_at_0"))
    assert missing_prior_note(campaign, ("overall", "motion")) is None
    assert "flat prior" not in build()
