"""The label-efficiency benchmark models the real campaign: the server's assigners with the task's overlap, and
what `pairs build` would export from the votes."""

from collections import Counter

import numpy as np
import pyarrow as pa

from bench.label_efficiency import (decidable, exported_decisions, ranked_decisions, synthetic_catalog,
                                    votes_to_targets)
from campaign.items import Item
from data_schemas import AnnotationTask


def arrow(votes: list[dict]) -> pa.Table:
    """The votes as the deciders read them."""
    return pa.Table.from_pylist(votes)


def test_pairs_build_decides_a_voted_pair_by_its_majority_and_nothing_else():
    items = [Item(f"p{k}", "c", f"x{k}", f"y{k}") for k in range(3)]
    scored = [(items[0], "lip_sync", True), (items[1], "lip_sync", True), (items[2], "lip_sync", False)]

    def vote(k: int, who: str, choice: str) -> dict:
        return {"condition_id": "c", "clip_a": f"x{k}", "clip_b": f"y{k}", "criterion": "lip_sync",
                "annotator": who, "choice": choice}

    votes = [vote(0, "u1", "a"), vote(0, "u2", "a"), vote(0, "u3", "b"),  # a by majority: right
             vote(1, "u1", "tie"), vote(1, "u2", "tie"), vote(1, "u3", "a")]  # mostly tie: no pair
    assert exported_decisions(arrow(votes), scored) == (1, 1)  # the unvoted pair is decided by nobody
    assert exported_decisions(arrow(votes + [vote(2, "u1", "a")]), scored) == (2, 1)  # one vote decides, here wrongly


def test_both_strategies_run_the_servers_campaign_within_its_overlap(monkeypatch):
    import bench.label_efficiency as bench

    catalog = synthetic_catalog(3, 4, np.random.default_rng(0), world_seed=0)
    task = AnnotationTask(overlap=2)
    given: Counter = Counter()
    real = bench.task_assigner

    def counting(task, items, prior, seed):  # the server's own assigner, watched
        assigner = real(task, items, prior, seed)
        ask = assigner.next_item

        def next_item(annotator):
            item = ask(annotator)
            if item is not None:
                given[task.assign, annotator, item.item_id] += 1
            return item
        assigner.next_item = next_item
        return assigner

    monkeypatch.setattr(bench, "task_assigner", counting)
    monkeypatch.setattr(bench, "TARGETS", (0.9, 1.01))  # 101 %: never reached, so every vote is asked
    for strategy in ("round-robin", "active"):
        reached, exported = votes_to_targets(strategy, catalog, task, annotators=4, seed=0, every=5)
        assert reached[1.01].votes is None
        shown = {k[1:]: n for k, n in given.items() if k[0] == strategy}
        assert set(shown.values()) == {1}  # nobody sees a pair twice
        per_pair = Counter(item_id for _, item_id in shown)
        assert len(per_pair) == len(catalog.items) and set(per_pair.values()) == {2}  # each pair: overlap annotators
        assert set(exported) == {"ab", "ranking", "ranking-none"}
        for at in exported.values():  # a share reached is reached no later than a larger one
            low, high = at[0.8].votes, at[0.9].votes
            assert low is None or low <= 2 * len(catalog.items)
            assert high is None or (low is not None and low <= high)
            assert at[0.8].exported_right <= at[0.8].exported <= at[0.8].decidable
        then = reached[0.9]
        if then.votes is not None:
            assert 0 <= then.exported_right <= then.exported <= then.decidable == len(decidable(catalog))


def test_ranking_export_decides_pairs_nobody_voted_on_and_a_majority_does_not():
    catalog = synthetic_catalog(1, 3, np.random.default_rng(0), world_seed=0)
    first, second, third = sorted({c for item in catalog.items for c in (item.clip_a, item.clip_b)})
    by_clips = {(item.clip_a, item.clip_b): item for item in catalog.items}
    # the truth as the votes say it: first ≻ second ≻ third on lip sync
    scored = [(by_clips[first, second], "lip_sync", True), (by_clips[second, third], "lip_sync", True),
              (by_clips[first, third], "lip_sync", True)]
    votes = [{"condition_id": by_clips[a, b].condition_id, "clip_a": a, "clip_b": b, "criterion": "lip_sync",
              "annotator": f"u{k}", "choice": "a"} for a, b in ((first, second), (second, third)) for k in range(6)]
    assert exported_decisions(arrow(votes), scored) == (2, 2)  # the majority of the two voted pairs only
    assert ranked_decisions(arrow(votes), scored, catalog, {}) == (3, 3)  # transitivity orders first ≻ third
    assert ranked_decisions(arrow(votes[:1]), scored, catalog, {}) == (0, 0)  # one vote: sure of nothing at 0.9


def test_an_annotator_without_noise_or_lapses_answers_the_truth_and_ties_what_is_nearly_equal():
    from bench.label_efficiency import Annotator

    truth = {"lip_sync": {"x": 2.0, "y": 0.0}, "expression": {"x": 0.0, "y": 1.0},
             "motion": {"x": 0.1, "y": 0.0}, "overall": {"x": 1.0, "y": 0.5}}
    person = Annotator(np.random.default_rng(0), noise=(0.0, 0.0), lapse=(0.0, 0.0))
    answers = [person.answer(Item("p", "c", "x", "y"), truth) for _ in range(20)]
    assert all(a == {"lip_sync": "a", "expression": "b", "motion": "tie", "overall": "a"} for a in answers)


def test_the_clairvoyant_bound_asks_a_pair_the_posterior_decides_wrongly_first():
    from bench.label_efficiency import Clairvoyant, clips_by_condition, prior_of
    from annotate.preference_posterior import PreferencePosteriors
    from data_schemas.constants import CRITERIA

    catalog = synthetic_catalog(2, 4, np.random.default_rng(1), world_seed=1)
    judge = PreferencePosteriors(clips_by_condition(catalog), CRITERIA, prior_of(catalog))

    def wrong(item: Item) -> int:
        return sum((judge.prefers(item.condition_id, c, item.clip_a, item.clip_b) > 0.5) != a_better
                   for scored_item, c, a_better in decidable(catalog) if scored_item is item)

    most = max(wrong(item) for item in catalog.items)
    assert most > 0  # the prior alone gets some decisions wrong here
    assigner = Clairvoyant(catalog, AnnotationTask(overlap=1), judge, seed=0)
    item = assigner.next_item("u1")
    assert wrong(item) == most
    assigner.record("u1", item.item_id, False)
    assert assigner.next_item("u1").item_id != item.item_id  # no repeats, as the server's assigners
