"""Active assignment: the choice of the most informative pair, and the rules
every assignment keeps (overlap, no repeats, gold rate)."""

from collections import Counter

import numpy as np
import pytest

from annotate.admin_app import admin_report
from annotate.assignment import ActiveAssigner, Assigner, assigner_for
from annotate.server import launch
from annotate.service import AnnotationService
from annotate.settings import ServerSettings
from annotate.simulate import Preference, simulate
from campaign.items import Item
from campaign.task import load_task, require_servable
from data_schemas import AnnotationTask, Score, UserError
from pairs.preferences.bradley_terry import prior_scores
from bench.records_campaign import sha
from tests.annotate.test_app import free_port
from syncnet.lse import NO_SYNC_PEAK
from tests.annotate.test_task import annotate

ALL = ("lip_sync", "expression", "motion", "overall")


def pairs_of(condition: str, clips: list[str], gold: dict[tuple[int, int], dict] | None = None) -> list[Item]:
    gold = gold or {}
    return [Item(f"{condition}-{i}{j}", condition, clips[i], clips[j], gold.get((i, j), {}))
            for i in range(len(clips)) for j in range(i + 1, len(clips))]


def test_active_assignment_asks_the_pair_the_prior_cannot_order_then_learns_from_votes():
    clips = ["x", "y", "z"]
    # The auto-score puts x far ahead and cannot tell y from z: y–z is the pair to ask.
    prior = {"lip_sync": {"x": 10.0, "y": 0.0, "z": 0.01}}
    assigner = ActiveAssigner(pairs_of("c", clips), overlap=10, gold_rate=0.0, criteria=("lip_sync",), prior=prior)
    first = assigner.next_item("ann-1")
    assert (first.clip_a, first.clip_b) == ("y", "z")
    values = assigner.posteriors.pair_values("c", [(i.clip_a, i.clip_b) for i in assigner.regular])
    assert assigner.regular[int(np.argmax(values))].item_id == first.item_id
    # Every annotator now says z beats y: the posterior orders them and moves its questions elsewhere.
    assigner.record("ann-1", first.item_id, False, {"lip_sync": "b"})
    asked = [first.item_id]
    for n in range(2, 10):
        item = assigner.next_item(f"ann-{n}")
        asked.append(item.item_id)
        assigner.record(f"ann-{n}", item.item_id, False,
                        {"lip_sync": "b" if (item.clip_a, item.clip_b) == ("y", "z") else "a"})
    assert len(set(asked)) > 1  # once y–z leans one way, other pairs become worth asking
    assert assigner.posteriors.prefers("c", "lip_sync", "z", "y") > 0.7
    ranks = {r["clip"]: r["rank"] for r in assigner.rankings()}
    assert ranks == {"x": 1, "z": 2, "y": 3}
    assert {"strength", "strength_sd", "prior", "votes", "condition_id", "criterion"} <= set(assigner.rankings()[0])


def test_active_assignment_keeps_overlap_no_repeats_and_the_gold_rate():
    clips = [sha(f"c/{i}") for i in range(4)]
    world = [sha(f"w/{i}") for i in range(3)]
    items = pairs_of("c", clips) + pairs_of("w", world, gold={(0, 1): {"lip_sync": "a"}, (0, 2): {"lip_sync": "a"}})
    prior = {"lip_sync": {clip: float(i) for i, clip in enumerate(clips)}}
    assigner = ActiveAssigner(items, overlap=2, gold_rate=0.3, criteria=("lip_sync",), prior=prior, seed=1)
    shown: Counter = Counter()
    gold = 0
    for _ in range(50):
        for annotator in ("a1", "a2", "a3"):
            item = assigner.next_item(annotator)
            if item is None:
                continue
            shown[annotator, item.item_id] += 1
            gold += item.is_gold
            assigner.record(annotator, item.item_id, False, {"lip_sync": "a"})
    assert max(shown.values()) == 1  # nobody sees an item twice
    per_item = Counter(item_id for _, item_id in shown)
    regular = [i.item_id for i in assigner.regular]
    assert all(per_item[i] == 2 for i in regular)  # exactly `overlap` distinct annotators each
    assert assigner.total_progress() == (2 * len(regular), 2 * len(regular))
    assert gold == 6  # every annotator met both gold items (rate 0.3), each once
    assert all(assigner.next_item(a) is None for a in ("a1", "a2", "a3"))


def test_a_taken_back_vote_leaves_the_posterior():
    assigner = ActiveAssigner(pairs_of("c", ["x", "y"]), 2, 0.0, ("lip_sync",), {})
    item = assigner.next_item("a1")
    assigner.record("a1", item.item_id, False, {"lip_sync": "a"})
    assert assigner.posteriors.prefers("c", "lip_sync", "x", "y") > 0.5
    assigner.reopen("a1", item.item_id)
    assert assigner.posteriors.prefers("c", "lip_sync", "x", "y") == pytest.approx(0.5)


def add_lse_c_at_0(campaign, values: dict[str, float]) -> None:
    """The lip-sync prior's score (PRIOR_SCORES): SyncNet's confidence at offset 0."""
    campaign.add_scores([Score(clip=clip, scorer="sync", scorer_version="1", metric="lse_c_at_0", value=v)
                         for clip, v in values.items()])


def test_the_service_serves_actively_and_replays_votes_into_the_posterior(small_campaign):
    add_lse_c_at_0(small_campaign, {sha(f"c1/{i}"): float(i) for i in range(4)})
    task = AnnotationTask(assign="active", gold_rate=0.0, practice=0, overlap=2)
    svc = AnnotationService(small_campaign, task)
    assert isinstance(svc.assigner, ActiveAssigner)
    answers = dict.fromkeys(ALL, "left")
    for n in range(6):
        showing = svc.next_showing("alice")
        svc.submit("alice", showing.showing_id, f"r{n}", answers)
    before = svc.rankings()
    assert len(before) == 3 * 4 * len(ALL)  # every clip of every condition, per criterion
    assert sum(r["votes"] for r in before) == 6 * len(ALL) * 2  # each vote counts for both of its clips
    prior = {r["clip"]: r["prior"] for r in before if r["criterion"] == "lip_sync" and r["condition_id"] == "c1"}
    assert prior[sha("c1/3")] > prior[sha("c1/0")]  # higher lse_c_at_0, higher prior
    svc.close()
    again = AnnotationService(small_campaign, task)  # a restart rebuilds the posterior from the journal
    assert again.rankings() == before
    assert admin_report(small_campaign, again)["rankings"] == before  # what the admin console shows
    again.close()


def test_a_marked_score_is_no_prior(small_campaign):
    add_lse_c_at_0(small_campaign, {sha(f"c1/{i}"): float(i) for i in range(3)})
    # The best score of all, but SyncNet found no sync peak: the value says nothing and must not rank the clip.
    small_campaign.add_scores([Score(clip=sha("c1/3"), scorer="sync", scorer_version="1", metric="lse_c_at_0",
                                     value=9.0, details={"mark": NO_SYNC_PEAK})])
    prior = prior_scores(small_campaign, ("lip_sync",))["lip_sync"]
    assert set(prior) == {sha(f"c1/{i}") for i in range(3)}
    task = AnnotationTask(assign="active", gold_rate=0.0, practice=0, overlap=2, criteria=["lip_sync"])
    svc = AnnotationService(small_campaign, task)
    standing = {r["clip"]: r for r in svc.rankings() if r["condition_id"] == "c1"}
    svc.close()
    assert standing[sha("c1/3")]["prior"] == 0.0  # the condition's mean, as a clip without a score
    assert standing[sha("c1/2")]["prior"] > 0 > standing[sha("c1/0")]["prior"]


def test_round_robin_stays_the_default_and_active_needs_ab_mode(small_campaign):
    assert AnnotationTask().assign == "round-robin"
    assert type(assigner_for(AnnotationTask(), [], small_campaign)) is Assigner
    with pytest.raises(UserError, match="assign active .* needs mode ab"):
        require_servable(AnnotationTask(mode="rating", assign="active"), "task")


def test_the_served_app_with_assign_active_hands_out_items(small_campaign):
    add_lse_c_at_0(small_campaign, {sha(f"c1/{i}"): float(i) for i in range(4)})
    server = launch(small_campaign, AnnotationTask(assign="active", gold_rate=0.0, practice=0, overlap=2),
                    ServerSettings(port=free_port()))
    try:
        result = simulate(server.url, small_campaign, 2, 5, Preference())
    finally:
        server.close()
    assert (result.votes, result.errors) == (10, [])
    votes = small_campaign.table("votes").to_pylist()
    assert len(votes) == 10 * len(ALL)
    showings = Counter((v["annotator"], v["clip_a"], v["clip_b"]) for v in votes)
    assert set(showings.values()) == {len(ALL)}  # no annotator got a pair twice


def test_assign_is_a_task_option_of_the_cli(small_campaign):
    where = ["--campaign", str(small_campaign.root)]
    done = annotate("task", "set", *where, "--assign", "active")
    assert done.returncode == 0 and "assign active" in " ".join(done.stdout.split())
    assert load_task(small_campaign).assign == "active"
    wrong = annotate("task", "set", *where, "--assign", "sideways")
    assert wrong.returncode == 2 and "--assign" in wrong.stderr


def test_progress_counts_follow_every_change_of_who_saw_and_answered_what():
    """Progress is kept as running counts; after any mix of showings, answers, skips, practice, undos and
    abandoned showings it equals what the item sets say."""
    import random

    gold = {(0, 1): {"overall": "a"}}
    items = [item for c in range(6) for item in pairs_of(f"c{c}", [f"c{c}/{k}" for k in range(4)], gold)]
    assigner = Assigner(items, overlap=2, gold_rate=0.2, practice=1)
    regular = [i for i in items if not i.is_gold]
    rng = random.Random(3)
    annotators = ["ann", "bob", "cy", "dee"]
    for _ in range(400):
        who = rng.choice(annotators)
        shown = [i for i in assigner.items if who in assigner.showing[i]]
        if shown and rng.random() < 0.8:
            item_id, roll = shown[0], rng.random()
            if assigner.items[item_id].is_gold and assigner.in_practice(who):
                assigner.record_practice(who, item_id)
            elif roll < 0.1:
                assigner.release(who, item_id)
            else:
                assigner.record(who, item_id, skipped=roll < 0.2)
        elif assigner.seen[who] and rng.random() < 0.1:
            assigner.reopen(who, rng.choice(sorted(assigner.seen[who])))
        else:
            assigner.next_item(who)
        for person in annotators:
            available = [i for i in regular if i.item_id not in assigner.seen[person]
                         and len(assigner.answered[i.item_id]) + len(assigner.showing[i.item_id] - {person}) < 2]
            assert assigner.progress(person) == (len(assigner.seen[person]),
                                                 len(assigner.seen[person]) + len(available))
        assert assigner.total_progress() == (sum(min(len(assigner.answered[i.item_id]), 2) for i in regular),
                                             2 * len(regular))
    assert assigner.total_progress()[0] > 0
