"""The annotation task is saved with the campaign, read back exactly, and refused when it cannot be served."""

import dataclasses
import json

import pytest

from campaign.store import Campaign
from campaign.task import load_task, save_task, task_path
from data_schemas import CRITERIA, AnnotationTask, UserError


@pytest.fixture
def campaign(tmp_path) -> Campaign:
    return Campaign.open(tmp_path / "c", create=True)


def test_a_campaign_without_a_task_asks_the_default_one(campaign):
    task = load_task(campaign)
    assert task == AnnotationTask() and not task_path(campaign).exists()
    assert (task.mode, tuple(task.criteria), task.overlap, task.gold_rate) == ("ab", CRITERIA, 3, 0.1)
    for name in (*CRITERIA, "tie", "both_bad"):  # a paragraph each, not a label
        assert len(task.definitions[name].split()) >= 25, name
    assert set(task.examples) == set(CRITERIA)


def test_the_task_round_trips_through_its_file(campaign):
    task = AnnotationTask(mode="rating", criteria=["overall", "identity"], overlap=5, gold_rate=0.0,
                          definitions={**AnnotationTask().definitions, "identity": "Same person as the reference?"},
                          examples={"identity": "Worse: the nose changes shape."}, instructions="Rate each clip.")
    save_task(campaign, task)
    assert load_task(campaign) == task
    saved = json.loads(task_path(campaign).read_text())
    assert saved["schema_version"] == AnnotationTask.SCHEMA_VERSION and saved["criteria"] == ["overall", "identity"]
    assert not list(campaign.root.glob(".task.json.*"))  # written beside and renamed over: no leftovers


@pytest.mark.parametrize(("change", "message"), [
    ({"criteria": ["identity"]}, "criterion 'identity' has no definition; give one"),
    ({"criteria": []}, "no criteria"),
    ({"criteria": ["lip sync"]}, "criterion 'lip sync': use letters"),
    ({"criteria": ["overall", "overall"]}, "overall are listed twice"),
    ({"overlap": 0}, "AnnotationTask.overlap: 0 is below the minimum 1"),
    ({"mode": "ranking"}, "'ranking' is not one of ab, rating"),
])
def test_a_task_that_cannot_be_served_is_not_saved(campaign, change, message):
    with pytest.raises(UserError, match=message):
        save_task(campaign, dataclasses.replace(AnnotationTask(), **change))
    assert not task_path(campaign).exists()


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "unreadable task"),
    ("[1, 2]", "expected a JSON object"),
    ('{"schema_version": 99}', "schema version 99 is newer"),
    ('{"colour": "red"}', "unknown task fields colour"),
    ('{"criteria": ["identity"]}', "criterion 'identity' has no definition"),
])
def test_a_damaged_task_file_is_one_line_naming_it(campaign, text, message):
    task_path(campaign).write_text(text)
    with pytest.raises(UserError, match=message) as error:
        load_task(campaign)
    assert str(task_path(campaign)) in str(error.value) and "\n" not in str(error.value)


def test_fields_missing_from_an_older_file_take_their_defaults(campaign):
    task_path(campaign).write_text('{"schema_version": 1, "overlap": 2}')
    assert load_task(campaign) == AnnotationTask(overlap=2)
