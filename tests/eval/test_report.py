"""`evaluate report`: the bootstrap on a case with a known answer, the verdict and the page from metrics with a
known answer, and a report from a tiny fixture run."""

import base64
import json

import datasets
import numpy as np
import pytest

from data_schemas import UserError
from eval.paired import bootstrap_ci, paired_comparison
from eval.report import ReportOptions, build_report, write_report
from eval.verdict import LOW_N, flag_low_n, verdict
from tests.pairs.test_export import voted_campaign  # noqa: F401 - fixture
from pairs.preferences.build import BuildOptions, build_pairs
from pairs.export import export_pairs
from tests.train.test_dpo import config
from train.dpo import train_preferences

# The keys the README documents for metrics.json (schema 1).
TOP_LEVEL = {"schema", "inputs", "implicit_reward", "generation", "auto_scores", "annotators", "training", "verdict"}
IMPLICIT = {"pairs", "accuracy", "accuracy_ci", "mean_margin", "per_criterion", "low_n"}
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


def known_metrics() -> dict:
    """Metrics with a known verdict: the policy beats the reference clearly on sync/lse_c (16 pairs), clearly
    loses on quality/sharpness (16 pairs), and wins identity/csim on 4 pairs only."""
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 16)
    comparison = {
        "sync/lse_c": paired_comparison(base + 1.0 + rng.normal(0, 0.1, 16), base, True),
        "quality/sharpness": paired_comparison(base - 1.0 + rng.normal(0, 0.1, 16), base, True),
        "identity/csim": paired_comparison(base[:4] + 1.0, base[:4], True),
        "sync/offset": paired_comparison(base, base, None),
    }
    metrics = flag_low_n({
        "schema": 1,
        "inputs": {"dataset": "pairs/", "policy": "runs/dpo", "reference": "embedded", "sft": None},
        "implicit_reward": {"policy": {"pairs": 24, "accuracy": 0.875, "accuracy_ci": [0.75, 1.0], "mean_margin": 0.3,
                                       "per_criterion": {"lip_sync": {"pairs": 20, "accuracy": 0.9,
                                                                      "accuracy_ci": [0.75, 1.0]},
                                                         "expression": {"pairs": 4, "accuracy": 0.75,
                                                                        "accuracy_ci": [0.25, 1.0]}}}},
        "generation": {"conditions": 4, "samples_per_condition": 4, "scorers": {}, "unavailable_scorers": {},
                       "means": {}, "unmeasured": {}, "comparisons": {"policy_vs_reference": comparison}},
        "auto_scores": {"dataset": [], "campaign": None},
        "annotators": None,
        "training": {"policy": {"steps": 300, "loss": 0.5, "rewards/accuracies": 0.89}, "sft": None},
    })
    metrics["verdict"] = verdict(metrics)
    return metrics


def test_verdict_passes_by_the_ci_and_flags_results_from_few_samples():
    metrics = known_metrics()
    checks = {(c["group"], c["name"]): c for c in metrics["verdict"]["checks"]}
    implicit = "held-out pairs where the policy prefers the human winner"
    assert [k[1] for k in checks if k[0] == implicit] == ["all criteria", "lip_sync", "expression"]
    assert checks[implicit, "all criteria"]["passed"] and not checks[implicit, "expression"]["passed"]
    lse, sharpness, csim = (checks["policy vs reference", m] for m in ("sync/lse_c", "quality/sharpness",
                                                                        "identity/csim"))
    assert lse["passed"] and not lse["worse"] and lse["value"] == pytest.approx(1.0, abs=0.1) and lse["n"] == 16
    assert sharpness["worse"] and not sharpness["passed"]
    assert csim["low_n"] and csim["n"] == 4 < LOW_N and not lse["low_n"]
    assert ("policy vs reference", "sync/offset") not in checks  # no better direction: nothing to pass
    comparison = metrics["generation"]["comparisons"]["policy_vs_reference"]
    assert comparison["identity/csim"]["low_n"] is True and comparison["sync/lse_c"]["low_n"] is False
    assert metrics["implicit_reward"]["policy"]["per_criterion"]["expression"]["low_n"] is True
    headline = metrics["verdict"]["headline"]
    # 4 pass, one of them (identity/csim: a zero-width CI from 4 pairs) only because it has too few samples
    assert headline[0].startswith("4 of 6 checks pass") and "2 rest on fewer than 10 samples" in headline[0]
    versus = next(line for line in headline if line.startswith("Policy vs reference"))
    assert "better: sync/lse_c +" in versus and "worse: quality/sharpness -" in versus
    assert "(n=16)" in versus and "identity/csim +1 [+1, +1] (n=4, too few)" in versus


def test_page_reads_verdict_first_and_greys_results_from_few_samples(tmp_path):
    metrics = known_metrics()
    rows = [{"model": model, "condition_id": "c1", "seed": 0, "video": f"samples/{model}/c1-seed0.mp4",
             "sync/lse_c": 2.0} for model in ("policy", "reference")]
    write_report(tmp_path, metrics, {}, rows)
    page = (tmp_path / "report.html").read_text()
    assert '<meta name=\'viewport\' content=\'width=device-width, initial-scale=1\'>' in page
    assert page.index("<h2>Verdict</h2>") < page.index("<h2>Samples</h2>") < page.index("<h2>Inputs</h2>")
    assert page.index(metrics["verdict"]["headline"][0]) < page.index("<h2>Inputs</h2>")
    # the forest plot is written next to the page and embedded in it
    forest = (tmp_path / "win_rates.png").read_bytes()
    assert forest.startswith(b"\x89PNG") and base64.b64encode(forest).decode() in page
    assert page.index(base64.b64encode(forest).decode()) < page.index("<h2>Inputs</h2>")
    # the 4-pair result is greyed and labelled wherever it appears; the 16-pair ones are not
    low = [row for row in page.split("<tr")[1:] if "identity/csim" in row]
    assert len(low) == 2 and all(row.startswith(" class='low-n'") and "n &lt; 10</span>" in row for row in low)
    assert all("low-n" not in row for row in page.split("<tr") if "sync/lse_c<" in row)
    # both models' videos in one synced player, without download or picture-in-picture
    player = page[page.index("<div class='sync'>"):page.index("<h2>Inputs</h2>")]
    assert player.count("<video ") == 2 and player.count("controlsList='nodownload' disablePictureInPicture") == 2
    assert "sync-play" in player and "sync-seek" in player and "document.querySelectorAll('.sync')" in page
    # the training summary is a table of values, not JSON
    training = page[page.index("<h2>Training</h2>"):]
    assert "<table>" in training and "<td>rewards/accuracies</td><td>0.89</td><td>–</td>" in training
    assert '{"steps"' not in page


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
    assert all(set(r) == {"pairs", "accuracy", "accuracy_ci", "low_n"}
               for r in metrics["implicit_reward"]["policy"]["per_criterion"].values())
    assert metrics["implicit_reward"]["policy"]["low_n"] is (len(heldout) < LOW_N)
    assert {c["name"] for c in metrics["verdict"]["checks"]} >= {"all criteria"}
    page = (out / "report.html").read_text()
    assert "Implicit reward on held-out pairs" in page and "data:image/png;base64," in page
    assert "<video src='samples/policy/" in page  # sample videos side by side, linked relative to the report
    assert page.index("<h2>Verdict</h2>") < page.index("<h2>Inputs</h2>") and "name='viewport'" in page


def test_missing_policy_and_missing_heldout_split_are_one_line_errors(runs, tmp_path):
    dataset, reference, policy, _ = runs
    with pytest.raises(UserError, match="--policy .*not a model folder"):
        build_report(ReportOptions(dataset=str(dataset), policy=tmp_path / "nope", out=tmp_path / "r"))
    only_train = tmp_path / "only-train"
    datasets.DatasetDict({"train": datasets.load_from_disk(str(dataset))["train"]}).save_to_disk(str(only_train))
    with pytest.raises(UserError, match="no 'heldout' split"):
        build_report(ReportOptions(dataset=str(only_train), policy=policy, out=tmp_path / "r"))
    with pytest.raises(UserError, match="not a campaign"):  # before any sampling, not after
        build_report(ReportOptions(dataset=str(only_train), policy=policy, campaign=tmp_path / "nope",
                                   out=tmp_path / "r"))
    with pytest.raises(UserError, match="--beta 0.0: must be above 0"):
        ReportOptions(dataset=str(dataset), policy=policy, beta=0.0, out=tmp_path / "r")
    with pytest.raises(UserError, match="different families or frame sizes"):  # a 32 px policy against the 64 px shipped model
        build_report(ReportOptions(dataset=str(dataset), policy=policy, out=tmp_path / "r"))
