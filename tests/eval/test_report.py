"""`evaluate report`: the bootstrap on a case with a known answer, and a report from a tiny fixture run."""

import json

import datasets
import numpy as np
import pytest

from data_schemas import UserError
from eval.paired import bootstrap_ci, paired_comparison
from eval.report import ReportOptions, build_report
from tests.pairs.test_export import voted_campaign  # noqa: F401 - fixture
from pairs.preferences.build import BuildOptions, build_pairs
from pairs.export import export_pairs
from tests.train.test_dpo import config
from train.dpo import train_preferences

# The keys the README documents for metrics.json (schema 1).
TOP_LEVEL = {"schema", "inputs", "implicit_reward", "generation", "auto_scores", "annotators", "training"}
IMPLICIT = {"pairs", "accuracy", "accuracy_ci", "mean_margin", "per_criterion"}
GENERATION = {"conditions", "samples_per_condition", "scorers", "unavailable_scorers", "means", "unmeasured",
              "comparisons"}
DIRECTED = {"n", "policy_mean", "reference_mean", "improvement", "improvement_ci", "win_rate", "win_rate_ci"}
UNDIRECTED = {"n", "policy_mean", "reference_mean", "difference"}


def test_bootstrap_ci_of_a_mean_matches_the_normal_theory():
    rng = np.random.default_rng(0)
    values = rng.normal(1.0, 2.0, 400)  # standard error 2 / 20 = 0.1
    low, high = bootstrap_ci(values, samples=4000)
    assert low < 1.0 < high
    assert high - low == pytest.approx(2 * 1.96 * values.std() / 20, rel=0.1)
    assert (low + high) / 2 == pytest.approx(values.mean(), abs=0.02)


def test_paired_comparison_signs_improvements_by_direction():
    policy, reference = np.array([3.0, 2.0, 5.0, 1.0]), np.array([1.0, 2.0, 4.0, 2.0])
    better = paired_comparison(policy, reference, higher_is_better=True)
    assert set(better) == DIRECTED and set(paired_comparison(policy, reference, None)) == UNDIRECTED
    assert better["improvement"] == pytest.approx(0.5) and better["win_rate"] == pytest.approx(2.5 / 4)
    worse = paired_comparison(policy, reference, higher_is_better=False)
    assert worse["improvement"] == pytest.approx(-0.5) and worse["win_rate"] == pytest.approx(1.5 / 4)
    assert "win_rate" not in paired_comparison(policy, reference, higher_is_better=None)
    assert paired_comparison(np.array([np.nan, 1.0]), np.array([0.0, 0.0]), True)["n"] == 1


@pytest.fixture
def runs(voted_campaign, tiny_model_dir, tmp_path):  # noqa: F811
    """A dataset with one held-out condition, and 2-step DPO and SFT runs of the tiny model on it."""
    exported = tmp_path / "dataset"
    export_pairs(voted_campaign, build_pairs(voted_campaign, BuildOptions(criterion="all", heldout=0.5, seed=1)),
                 exported, embed_media=False, parquet=False)
    policy = train_preferences(config(exported, tiny_model_dir, tmp_path / "dpo", steps=2))
    sft = train_preferences(config(exported, tiny_model_dir, tmp_path / "sft", steps=2), objective="sft")
    return exported, tiny_model_dir, policy, sft


def test_report_builds_from_a_tiny_run(runs, tmp_path, voted_campaign):  # noqa: F811
    dataset, reference, policy, sft = runs
    out = tmp_path / "report"
    metrics = build_report(ReportOptions(dataset=str(dataset), policy=policy, sft=sft, reference=str(reference),
                                         campaign=voted_campaign.root, out=out, samples=2, draws=2, steps=2,
                                         window=8, scorers=("motion", "quality")))
    assert set(metrics) == TOP_LEVEL and metrics["schema"] == 1
    assert set(metrics["generation"]) == GENERATION and set(metrics["auto_scores"]) == {"dataset", "campaign"}
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    heldout = datasets.load_from_disk(str(dataset))["heldout"]
    for name in ("policy", "sft"):
        implicit = metrics["implicit_reward"][name]
        assert set(implicit) == IMPLICIT
        assert implicit["pairs"] == len(heldout) and 0 <= implicit["accuracy"] <= 1
        assert set(implicit["per_criterion"]) == set(heldout["criterion"])
    generation = metrics["generation"]
    assert set(generation["means"]) == {"policy", "reference", "sft"}
    assert set(generation["comparisons"]) == {"policy_vs_reference", "sft_vs_reference", "policy_vs_sft"}
    assert set(generation["comparisons"]["policy_vs_reference"]) == {
        "motion/head_motion", "motion/flicker", "motion/jitter", "quality/sharpness", "quality/exposure",
        "quality/clipped"}
    assert len(list((out / "samples" / "policy").glob("*.mp4"))) == generation["conditions"] * 2
    assert metrics["training"]["policy"]["steps"] == 2 and "alpha" in metrics["annotators"]
    page = (out / "report.html").read_text()
    assert "Implicit reward on held-out pairs" in page and "data:image/png;base64," in page
    assert "<video src='samples/policy/" in page  # sample videos side by side, linked relative to the report


def test_missing_policy_and_missing_heldout_split_are_one_line_errors(runs, tmp_path):
    dataset, reference, policy, _ = runs
    with pytest.raises(UserError, match="--policy .*not a model folder"):
        build_report(ReportOptions(dataset=str(dataset), policy=tmp_path / "nope", out=tmp_path / "r"))
    only_train = tmp_path / "only-train"
    datasets.DatasetDict({"train": datasets.load_from_disk(str(dataset))["train"]}).save_to_disk(str(only_train))
    with pytest.raises(UserError, match="no 'heldout' split"):
        build_report(ReportOptions(dataset=str(only_train), policy=policy, out=tmp_path / "r"))
    with pytest.raises(UserError, match="different families or frame sizes"):  # a 32 px policy against the 64 px shipped model
        build_report(ReportOptions(dataset=str(dataset), policy=policy, out=tmp_path / "r"))
