"""`annotate task show|set`, `annotate serve` recording what it asks, and `pairs` reading the asked criteria."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from annotate.settings import TaskSettings, record_task
from campaign.journal import JournalWriter
from campaign.task import load_task, save_task, task_path
from data_schemas import AnnotationTask, Score, UserError, Vote
from pairs.preferences.build import BuildOptions, build_pairs
from pairs.stats import campaign_stats
from bench.records_campaign import sha
from tests.annotate.test_app import free_port

BIN = Path(sys.executable).parent
IDENTITY = "Does the face still look like the person in the reference image, from the first frame to the last?"


def annotate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "annotate"), *args], capture_output=True, text=True, timeout=120)


def test_task_set_and_show_through_the_cli(small_campaign):
    where = ["--campaign", str(small_campaign.root)]
    shown = annotate("task", "show", *where)
    assert shown.returncode == 0 and "the default task" in shown.stdout and "lip_sync:" in shown.stdout
    done = annotate("task", "set", *where, "--criteria", "lip_sync,identity", "--overlap", "2", "--gold-rate", "0",
                    "--instructions", "Watch twice.", "--definition", f"identity={IDENTITY}",
                    "--definition", "tie=Equal, as far as you can tell, after watching both clips twice.",
                    "--example", "identity=Worse: the chin changes shape halfway.", "--practice", "1",
                    "--gold-feedback")
    assert done.returncode == 0, done.stderr
    task = json.loads(annotate("task", "show", *where, "--json").stdout)
    assert (task["criteria"], task["overlap"], task["gold_rate"], task["instructions"]) == (
        ["lip_sync", "identity"], 2, 0.0, "Watch twice.")
    assert (task["practice"], task["gold_feedback"]) == (1, True)
    assert task["definitions"]["identity"] == IDENTITY and task["definitions"]["tie"].startswith("Equal")
    assert task["examples"]["identity"] == "Worse: the chin changes shape halfway."
    assert load_task(small_campaign).criteria == ["lip_sync", "identity"]
    text = annotate("task", "show", *where).stdout
    assert IDENTITY in text and str(task_path(small_campaign)) in text
    again = annotate("task", "set", *where, "--mode", "rating")  # what is not given stays
    assert again.returncode == 0 and load_task(small_campaign).criteria == ["lip_sync", "identity"]
    assert "no gold items, practice or feedback" in " ".join(again.stdout.split())  # not "practice 1"


@pytest.mark.parametrize(("args", "message"), [
    (["--mode", "ranking"], "--mode ranking: choose from ab, rating"),
    (["--criteria", "lip_sync,identity"], "criterion 'identity' has no definition"),
    (["--definition", "lipsync=Mouth follows the voice."], "--definition 'lipsync': choose from lip_sync"),
    (["--definition", "no equals sign"], "write CRITERION=TEXT"),
    (["--overlap", "0"], "--overlap"),
    (["--practice", "-1"], "--practice"),
    (["--mode", "rating", "--practice", "2", "--gold-feedback"],
     "--practice, --gold-feedback: rating mode has no gold items (they are clip pairs); leave them out"),
])
def test_task_set_mistakes_are_one_line_and_change_nothing(small_campaign, args, message):
    done = annotate("task", "set", "--campaign", str(small_campaign.root), *args)
    assert done.returncode == 2 and message in done.stderr
    assert not task_path(small_campaign).exists()


def test_serve_records_the_task_it_serves_with_its_overrides(small_campaign):
    save_task(small_campaign, AnnotationTask(overlap=4, instructions="Old instructions."))
    done = annotate("serve", "--campaign", str(small_campaign.root), "--port", str(free_port()),
                    "--criteria", "lip_sync,overall", "--gold-rate", "0.5", "--exit-after-simulation")
    assert done.returncode == 0, done.stderr
    assert "overlap 4" in done.stdout  # the campaign's own setting where no flag overrides it
    assert "practice 3 gold items, gold feedback off" in done.stdout
    assert "flat prior" not in done.stdout  # round-robin keeps no prior
    task = load_task(small_campaign)
    assert (task.criteria, task.gold_rate, task.overlap, task.instructions) == (
        ["lip_sync", "overall"], 0.5, 4, "Old instructions.")


def test_serve_active_says_which_criteria_start_from_a_flat_prior(small_campaign):
    small_campaign.add_scores([Score(clip=sha("c1/0"), scorer="motion", scorer_version="1", metric="jitter",
                                     value=0.1)])
    done = annotate("serve", "--campaign", str(small_campaign.root), "--port", str(free_port()), "--assign", "active",
                    "--criteria", "lip_sync,motion", "--exit-after-simulation")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())
    assert "--assign active: no clip has sync/lse_c_at_0, the prior of lip_sync (`pairs score --campaign" in said
    assert said.count("flat prior") == 1 and "motion/jitter" not in said


def test_the_task_a_server_serves_is_saved_even_when_nothing_is_overridden(small_campaign):
    assert record_task(small_campaign, TaskSettings(campaign=small_campaign.root)) == AnnotationTask()
    assert task_path(small_campaign).exists()


def add_votes(campaign, criteria):
    """Three annotators prefer clip 0 over clip 1 of c1 on every criterion of `criteria`."""
    a, b = sorted([sha("c1/0"), sha("c1/1")])
    choice = "a" if a == sha("c1/0") else "b"
    records = [Vote(showing_id=f"s{n}", request_id=f"r{n}", annotator=f"ann{n}", condition_id="c1", clip_a=a,
                    clip_b=b, left="a", criterion=c, choice=choice) for n in range(3) for c in criteria]
    with JournalWriter(campaign.journal_path("votes"), Vote) as journal:
        journal.append(records)


def test_pairs_build_and_stats_read_the_campaigns_criteria(small_campaign):
    add_votes(small_campaign, ("lip_sync", "expression", "motion", "overall"))
    options = BuildOptions(criterion="all", heldout=0.0)
    assert sorted(set(build_pairs(small_campaign, options).column("criterion").to_pylist())) == [
        "expression", "lip_sync", "motion", "overall"]
    save_task(small_campaign, AnnotationTask(criteria=["overall", "lip_sync"]))
    assert sorted(build_pairs(small_campaign, options).column("criterion").to_pylist()) == ["lip_sync", "overall"]
    with pytest.raises(UserError, match="--criterion motion: the campaign's task asks overall, lip_sync"):
        build_pairs(small_campaign, BuildOptions(criterion="motion", heldout=0.0))
    assert list(campaign_stats(small_campaign, bootstrap=10)["alpha"]) == ["overall", "lip_sync"]
