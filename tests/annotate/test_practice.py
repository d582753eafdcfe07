"""The practice round (gold items first, answers kept out of the votes, known answers after each) and the task's
gold feedback, through the service."""

import json

import pytest

from annotate.cli import practice_note
from annotate.service import AnnotationService
from annotate.settings import TaskSettings, with_settings
from annotate.showing import Refused
from campaign.practice import practice_answers
from data_schemas import AnnotationTask
from pairs.preferences.build import BuildOptions, build_pairs
from bench.records_campaign import make_campaign

WRONG = {"lip_sync": "tie", "expression": "tie", "motion": "tie", "overall": "tie"}


def service(campaign, **task) -> AnnotationService:
    return AnnotationService(campaign, AnnotationTask(**{"gold_rate": 0.0, "overlap": 1, **task}))


def shown_answer(showing, criterion: str) -> str:
    """The gold item's known answer as the annotator sees it: left or right."""
    return "left" if showing.item.gold[criterion] == showing.left else "right"


def right_answers(showing) -> dict[str, str]:
    """Every known answer right; `tie` where the item has none."""
    return {c: shown_answer(showing, c) if c in showing.item.gold else "tie" for c in WRONG}


def test_a_new_annotator_practises_on_gold_items_that_count_nowhere(small_campaign):
    svc = service(small_campaign, practice=2)
    practised = []
    for n in range(2):
        showing = svc.next_showing("alice")
        assert showing.practice and showing.item.is_gold and svc.practice_progress("alice") == (n, 2)
        ack = svc.submit("alice", showing.showing_id, f"p{n}", right_answers(showing))
        assert ack.practice and ack.feedback and all(entry["correct"] for entry in ack.feedback)
        practised.append(showing.item.item_id)
        assert svc.next_showing("alice").practice == (n == 0)  # the second practice item, then a regular one
    assert len(set(practised)) == 2 and svc.practice_progress("alice") == (2, 2)
    regular = svc.next_showing("alice")
    assert not regular.item.is_gold and svc.progress("alice")[0] == 0  # practice is not progress either
    assert small_campaign.table("votes").num_rows == 0
    stored = practice_answers(small_campaign)
    assert stored.num_rows == 2 * 4 and set(stored.column("annotator").to_pylist()) == {"alice"}
    svc.submit("alice", regular.showing_id, "v1", dict.fromkeys(WRONG, "left"))
    pairs = build_pairs(small_campaign, BuildOptions(criterion="all", heldout=0.0))
    # Only the regular vote decides pairs: none of the practised world clips is in one.
    assert set(pairs.column("condition_id").to_pylist()) == {regular.item.condition_id} != {"world-1"}
    svc.close()


def test_practice_marks_are_checked_though_none_are_kept(small_campaign):
    svc = service(small_campaign, practice=1)
    showing = svc.next_showing("alice")
    assert showing.practice
    with pytest.raises(Refused, match="marks must be a list") as refused:
        svc.submit("alice", showing.showing_id, "p0", right_answers(showing), marks={"clip": "left"})
    assert refused.value.status == 400
    assert svc.submit("alice", showing.showing_id, "p0", right_answers(showing),
                      marks=[{"clip": "left", "criterion": "lip_sync", "start_s": 0.0, "end_s": 1.0}]).practice
    svc.close()
    assert len(practice_answers(small_campaign)) == 4 and svc.marks.path.read_bytes() == b""


def test_feedback_names_each_known_answer_as_shown_and_defines_what_was_missed(small_campaign):
    svc = service(small_campaign, practice=1)
    showing = svc.next_showing("alice")
    gold = showing.item.gold
    answers = {**WRONG, "overall": shown_answer(showing, "overall")}
    ack = svc.submit("alice", showing.showing_id, "p1", answers)
    by_criterion = {entry["criterion"]: entry for entry in ack.feedback}
    assert list(by_criterion) == [c for c in svc.criteria if c in gold]  # the task's order, known answers only
    assert by_criterion["overall"] == {"criterion": "overall", "answer": answers["overall"],
                                       "given": answers["overall"], "correct": True}
    for criterion in set(gold) - {"overall"}:
        assert by_criterion[criterion] == {"criterion": criterion, "answer": shown_answer(showing, criterion),
                                           "given": "tie", "correct": False,
                                           "definition": svc.task.definitions[criterion]}
    rows = practice_answers(small_campaign).to_pylist()
    assert {r["criterion"]: (r["choice"], r["answer"]) for r in rows}["overall"] == (gold["overall"], gold["overall"])
    svc.close()


def test_a_restart_neither_repeats_finished_practice_nor_loses_an_open_practice_item(small_campaign):
    svc = service(small_campaign, practice=2)
    for n in range(2):
        showing = svc.next_showing("alice")
        first = svc.submit("alice", showing.showing_id, f"a{n}", WRONG)
    bob_first = svc.next_showing("bob")
    svc.submit("bob", bob_first.showing_id, "b0", WRONG)
    bob_open = svc.next_showing("bob")
    svc.close()
    again = service(small_campaign, practice=2)
    assert not again.next_showing("alice").practice
    repeat = again.submit("alice", showing.showing_id, "a1", WRONG)  # a retry after the restart
    assert repeat.repeated and repeat.practice and repeat.feedback == first.feedback
    resumed = again.next_showing("bob")
    assert (resumed.showing_id, resumed.practice) == (bob_open.showing_id, True)
    again.submit("bob", resumed.showing_id, "b1", WRONG)
    assert not again.next_showing("bob").practice and again.practice_progress("bob") == (2, 2)
    again.close()


def test_a_showing_journaled_before_practice_existed_resumes(small_campaign):
    svc = service(small_campaign, practice=0)
    showing = svc.next_showing("alice")
    svc.close()
    path = small_campaign.journal_path("showings")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in line.items() if k != "practice"}) + "\n" for line in lines))
    again = service(small_campaign, practice=0)
    resumed = again.next_showing("alice")
    assert (resumed.showing_id, resumed.practice) == (showing.showing_id, False)
    again.close()


def test_no_practice_when_the_task_asks_none_or_the_campaign_has_no_gold(small_campaign, tmp_path):
    svc = service(small_campaign, practice=0)
    assert not svc.next_showing("alice").practice and svc.practice_progress("alice") == (0, 0)
    svc.close()
    no_gold = service(make_campaign(tmp_path / "plain", {"c1": [None] * 3}), practice=3)
    showing = no_gold.next_showing("alice")
    assert not showing.practice and not showing.item.is_gold and no_gold.assigner.practice == 0
    assert practice_note(no_gold.task, no_gold.assigner.practice) == "no practice (no gold items to practise on)"
    no_gold.close()


def test_an_annotator_who_voted_before_practice_was_asked_is_not_sent_to_practise(small_campaign):
    svc = service(small_campaign, practice=0)
    showing = svc.next_showing("alice")
    svc.submit("alice", showing.showing_id, "v1", WRONG)
    svc.close()
    assert not service(small_campaign, practice=3).next_showing("alice").practice


def test_gold_feedback_tells_the_known_answers_after_a_gold_vote_only_when_asked(small_campaign):
    for feedback in (False, True):
        svc = service(small_campaign, practice=0, gold_rate=1.0, gold_feedback=feedback)
        gold = svc.next_showing("alice")
        assert gold.item.is_gold and not gold.practice
        ack = svc.submit("alice", gold.showing_id, f"g-{feedback}", right_answers(gold))
        assert not ack.practice and bool(ack.feedback) == feedback
        assert small_campaign.table("votes").num_rows == 4 * (1 + feedback)  # a vote, as any gold vote
        if feedback:  # undone, it would be answered again knowing the answer
            with pytest.raises(Refused, match="known answers of this gold item were shown"):
                svc.retract("alice", gold.showing_id)
        svc.close()
    svc = service(small_campaign, practice=0, gold_feedback=True)
    regular = svc.next_showing("bob")
    assert not regular.item.is_gold and svc.submit("bob", regular.showing_id, "r1", WRONG).feedback == ()
    svc.close()


def test_task_settings_set_practice_and_gold_feedback():
    task = with_settings(AnnotationTask(), TaskSettings(campaign=".", practice=0, gold_feedback=True))
    assert (task.practice, task.gold_feedback) == (0, True)
    assert (AnnotationTask().practice, AnnotationTask().gold_feedback) == (3, False)  # a real round by default
