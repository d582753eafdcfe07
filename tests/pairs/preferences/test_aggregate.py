import pyarrow as pa
import pytest

from pairs.preferences.aggregate import vote_decisions


def votes(*rows):
    """rows: (pair, annotator, choice) with pair 'p1', 'p2', … in condition c, criterion overall."""
    return pa.table({
        "condition_id": ["c"] * len(rows),
        "clip_a": [f"{r[0]}a" for r in rows],
        "clip_b": [f"{r[0]}b" for r in rows],
        "criterion": ["overall"] * len(rows),
        "annotator": [r[1] for r in rows],
        "choice": [r[2] for r in rows],
    })


def decisions(table, **kwargs):
    return {r["clip_a"][:-1]: r for r in vote_decisions(table, **kwargs).to_pylist()}


def test_majority_ties_both_bad_and_skips():
    table = votes(
        ("p1", "x", "a"), ("p1", "y", "a"), ("p1", "z", "b"),          # 2:1 for a
        ("p2", "x", "tie"), ("p2", "y", "tie"), ("p2", "z", "b"),      # plurality tie
        ("p3", "x", "both_bad"), ("p3", "y", "both_bad"), ("p3", "z", "a"),  # plurality both bad
        ("p4", "x", "a"), ("p4", "y", "b"),                            # split
        ("p5", "x", "skip"), ("p5", "y", "b"),                         # a skip is no vote
    )
    got = decisions(table)
    assert got["p1"]["winner"] == "a" and got["p1"]["votes"] == 3
    assert got["p1"]["agreement"] == pytest.approx(2 / 3) and got["p1"]["margin"] == pytest.approx(1 / 3)
    assert got["p2"]["winner"] is None  # a tie is never trained as a win
    assert got["p3"]["winner"] is None
    assert got["p4"]["winner"] is None
    assert got["p5"]["winner"] == "b" and got["p5"]["votes"] == 1 and got["p5"]["annotators"] == ["y"]


def test_half_ties_can_decide_and_weights_can_flip():
    table = votes(("p1", "x", "tie"), ("p1", "y", "tie"), ("p1", "z", "b"))
    assert decisions(table, ties="half")["p1"]["winner"] == "b"
    assert decisions(table, ties="half")["p1"]["agreement"] == pytest.approx(2 / 3)
    flip = votes(("p1", "x", "a"), ("p1", "y", "a"), ("p1", "z", "b"))
    weights = pa.table({"annotator": ["x", "y", "z"], "weight": [0.2, 0.2, 1.0]})
    assert decisions(flip)["p1"]["winner"] == "a"
    assert decisions(flip, weights=weights)["p1"]["winner"] == "b"


def test_dawid_skene_finds_planted_bad_annotators_and_its_weights_fix_the_majority():
    import numpy as np

    from pairs.preferences.annotator_weights import dawid_skene

    rng = np.random.default_rng(0)
    rows = []
    for pair in range(300):
        truth = "a" if rng.random() < 0.5 else "b"
        for annotator in ("good1", "good2", "bad1", "bad2", "bad3"):
            if annotator.startswith("good"):
                choice = truth if rng.random() < 0.9 else ("b" if truth == "a" else "a")
            else:  # clicks at random
                choice = str(rng.choice(["a", "b", "tie", "both_bad"]))
            rows.append((f"p{pair:03d}{truth}", annotator, choice))
    table = votes(*rows)
    weights = {r["annotator"]: r for r in dawid_skene(table).to_pylist()}
    assert weights["good1"]["accuracy"] > 0.7 and weights["good2"]["accuracy"] > 0.7
    assert all(weights[b]["accuracy"] < 0.4 for b in ("bad1", "bad2", "bad3"))
    assert min(weights["good1"]["weight"], weights["good2"]["weight"]) > 3 * max(
        weights[b]["weight"] for b in ("bad1", "bad2", "bad3"))

    def correct(decided):
        return sum(r["winner"] == r["clip_a"][-2] for r in decided.to_pylist()) / 300

    plain, weighted = correct(vote_decisions(table)), correct(vote_decisions(table, weights=dawid_skene(table)))
    # Two good annotators at 90% disagree on ~18% of pairs, so ~0.9 is the best any rule can do.
    assert weighted > 0.88 and weighted > plain + 0.2


def test_gold_weights_smooth_accuracy():
    from pairs.preferences.annotator_weights import gold_weights

    table = votes(("p1", "x", "a"), ("p1", "y", "b"), ("p2", "x", "a"), ("p2", "y", "a"))
    gold = pa.table({"clip_a": ["p1a", "p2a"], "clip_b": ["p1b", "p2b"], "criterion": ["overall"] * 2,
                     "answer": ["a", "a"]})
    got = {r["annotator"]: r["accuracy"] for r in gold_weights(table, gold).to_pylist()}
    assert got == {"x": pytest.approx(3 / 4), "y": pytest.approx(2 / 4)}
