"""`evaluate report`: did the preference data make the model better? metrics.json + a self-contained report.html.

Sections (keys of metrics.json, documented in the README):
- `implicit_reward`: on held-out pairs, the share where the policy (and SFT), relative to the
  reference, prefers the human winner; per criterion; the margins' histogram;
- `generation`: K samples per held-out condition from policy, reference (and SFT) with the same seeds,
  scored by every available scorer: means, paired win rates and improvements with bootstrap 95% CIs;
- `auto_scores`: how often each auto-score picks the human winner (accuracy, AUC), from the
  dataset's pairs, and from the campaign (with annotator agreement) when one is given;
- `training`: the trainers' curves (loss, implicit accuracy, margin) from their metrics.jsonl;
- `verdict`: the headline checks of the policy (eval.verdict); every result with a sample count also
  carries `low_n`, true below 10 samples.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from campaign.store import Campaign
from data_schemas import UserError
from eval import figures
from eval.html import render
from eval.paired import bootstrap_ci, paired_comparison
from eval.verdict import flag_low_n, verdict
from cli_kit.options import check_positive, option
from pairs.scoring.scorers import HIGHER_IS_BETTER, ScorerOptions, load_scorers
from pairs.stats import winner_agreement

if TYPE_CHECKING:  # torch and diffusers load only when a report is built
    from model_families.family import ModelFamily

SCHEMA = 1


@dataclass(frozen=True, kw_only=True)
class ReportOptions(ScorerOptions):
    """Every knob of `evaluate report`; the scorers' options are those of `pairs score`."""

    dataset: str = option(help="Folder from `pairs export` (with a heldout split) or a Hub dataset id.")
    policy: Path = option(help="Model folder from `train dpo`.")
    out: Path = option(help="Folder for report.html, metrics.json, plots, samples/, config.json and command.txt.")
    reference: str = option("embedded", "Reference model folder, or embedded (the shipped one).")
    sft: Path | None = option(None, "Model folder from `train sft`, compared too.")
    campaign: Path | None = option(None, "Campaign the pairs came from: auto-scores vs humans, α.")
    samples: int = option(4, "Samples per held-out condition and model.", minimum=1)
    conditions: int | None = option(None, "Held-out conditions to sample (default: all).", minimum=1)
    seed: int = option(0, "First sampling seed; also seeds the noise of the implicit reward.")
    beta: float = option(2500.0, "β of the implicit reward margins (accuracy does not depend on it).")
    draws: int = option(8, "Noise/timestep draws per held-out pair, spread evenly over its windows (at least one "
                        "each).", minimum=1)
    window: int = option(16, "Video frames per window of the implicit reward; windows tile the whole clip.", minimum=4)
    steps: int = option(20, "Sampling steps.", minimum=1)
    guidance: float = option(2.0, "Classifier-free guidance of the samples.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "beta")


def _model_dir(path: Path | None, flag: str) -> None:
    if path is not None and not (Path(path) / "family.json").is_file():
        raise UserError(f"{flag} {path}: not a model folder (no family.json); "
                        "give the --out of `train dpo` / `train sft`")


def build_report(options: ReportOptions) -> dict:
    """Compute every section, write metrics.json and report.html into `options.out`; returns the metrics."""
    from model_families.registry import load_model
    from train.preference_data import load_split, preference_set

    _model_dir(options.policy, "--policy")
    _model_dir(options.sft, "--sft")
    campaign = None if options.campaign is None else Campaign.open(options.campaign)  # before hours of sampling
    heldout = load_split(options.dataset, "heldout")  # a missing split is a one-line error before any work
    if len(heldout) == 0:
        raise UserError(f"--dataset {options.dataset}: the heldout split is empty; build pairs with --heldout > 0")
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    models = {"policy": str(options.policy), "reference": options.reference,
              **({"sft": str(options.sft)} if options.sft else {})}
    pipelines = {name: load_model(path, flag=f"--{name}") for name, path in models.items()}
    kinds = {name: (p.name, p.frame_shape) for name, p in pipelines.items()}
    if len(set(kinds.values())) > 1:
        raise UserError(f"models of different families or frame sizes ({kinds}); compare models fine-tuned from "
                        "the --reference (`train dpo --model` = `evaluate report --reference`)")
    data = preference_set(options.dataset, pipelines["reference"], split="heldout")
    images: dict[str, bytes] = {}

    implicit, margins = _implicit_rewards(pipelines, data, list(heldout["criterion"]), options)
    images["margins"] = figures.margin_histogram(margins)
    generation, sample_rows = _generation(pipelines, options)
    auto_scores = {"dataset": _dataset_auto_scores(options.dataset), "campaign": None}
    annotators = None
    if campaign is not None:
        from pairs.stats import campaign_stats

        stats = campaign_stats(campaign)
        auto_scores["campaign"] = stats["auto_scores"]
        annotators = {"alpha": stats["alpha"], "annotators": stats["annotators"]}
    if auto_scores["dataset"]:
        images["auto_scores"] = figures.auto_score_accuracy(auto_scores["dataset"])
    training = {name: _curve(Path(path)) for name, path in models.items() if name != "reference"}
    if any(training.values()):
        images["training"] = figures.training_curves({k: v for k, v in training.items() if v})

    metrics = flag_low_n({
        "schema": SCHEMA,
        "inputs": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "implicit_reward": implicit,
        "generation": generation,
        "auto_scores": auto_scores,
        "annotators": annotators,
        "training": {name: _summary(rows) for name, rows in training.items()},
    })
    metrics["verdict"] = verdict(metrics)
    write_report(out, metrics, images, sample_rows)
    return metrics


def write_report(out: Path, metrics: dict, images: dict[str, bytes], samples: list[dict]) -> None:
    """metrics.json, the win-rate forest plot (drawn from the metrics alone), every plot as PNG, and
    report.html with the plots embedded; `samples` are the generation rows with their video paths."""
    images = dict(images)
    comparisons = {k: v for k, v in metrics["generation"]["comparisons"].items() if k.endswith("_vs_reference")}
    if any("win_rate" in m for c in comparisons.values() for m in c.values()):
        images["win_rates"] = figures.win_rates(comparisons)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    for name, png in images.items():
        (out / f"{name}.png").write_bytes(png)
    (out / "report.html").write_text(render(metrics, images, samples), encoding="utf-8")


def _implicit_rewards(pipelines: dict, data, criteria: list[str], options: ReportOptions) -> tuple[dict, dict]:
    from eval.implicit_reward import reward_margins

    policies = {name: pipelines[name] for name in ("policy", "sft") if name in pipelines}
    margins = reward_margins(policies, pipelines["reference"], data, options.beta, options.draws, options.window,
                             options.seed)
    out = {}
    for name, margin in margins.items():
        correct = (margin > 0).astype(float)
        out[name] = {
            "pairs": len(margin), **_accuracy(correct, options.seed), "mean_margin": float(margin.mean()),
            "per_criterion": {c: {"pairs": int(sum(k == c for k in criteria)),
                                  **_accuracy(correct[np.array(criteria) == c], options.seed)}
                              for c in sorted(set(criteria))},
        }
    return out, margins


def _accuracy(correct: np.ndarray, seed: int) -> dict:
    return {"accuracy": float(correct.mean()), "accuracy_ci": list(bootstrap_ci(correct, seed=seed))}


def _generation(models: dict[str, ModelFamily], options: ReportOptions) -> tuple[dict, list[dict]]:
    """The generation section, and one row per sample (its path relative to OUT, and its scores)."""
    from eval.generation import generate_samples, heldout_inputs, score_samples

    scorers, unavailable = load_scorers(options)
    conditions = heldout_inputs(options.dataset, options.conditions)
    samples = generate_samples(models, conditions, options.samples, options.seed, options.out, options.steps,
                               options.guidance)
    rows = score_samples(samples, conditions, scorers)
    for row, sample in zip(rows, samples):
        row["video"] = str(sample.path.relative_to(options.out))
    metrics = [f"{s.name}/{m}" for s in scorers for m in s.metrics]
    by_model = {name: {(r["condition_id"], r["seed"]): r for r in rows if r["model"] == name} for name in models}
    keys = sorted(by_model["policy"])

    def values(model: str, metric: str) -> np.ndarray:
        return np.array([np.nan if by_model[model][k][metric] is None else by_model[model][k][metric] for k in keys])

    comparisons = {}
    for a, b in (("policy", "reference"), ("sft", "reference"), ("policy", "sft")):
        if a in models and b in models:
            comparisons[f"{a}_vs_{b}"] = {
                m: paired_comparison(values(a, m), values(b, m), HIGHER_IS_BETTER.get(m), seed=options.seed)
                for m in metrics}
    return {
        "conditions": len(conditions), "samples_per_condition": options.samples,
        "scorers": {s.name: s.version for s in scorers}, "unavailable_scorers": unavailable,
        "means": {name: {m: _nanmean(values(name, m)) for m in metrics} for name in models},
        "unmeasured": {name: {m: int(np.isnan(values(name, m)).sum()) for m in metrics} for name in models},
        "comparisons": comparisons,
    }, rows


def _nanmean(values: np.ndarray) -> float | None:
    return float(np.nanmean(values)) if np.isfinite(values).any() else None


def _dataset_auto_scores(dataset: str) -> list[dict]:
    """Per auto-score: how often it prefers the human winner, over all the dataset's pairs."""
    from train.preference_data import load_split

    rows = [r for split in ("train", "heldout") for r in load_split(dataset, split).select_columns(
        ["chosen_scores", "rejected_scores"]) if r["chosen_scores"]]
    out = []
    for score, higher in sorted(HIGHER_IS_BETTER.items()):
        pairs = [(json.loads(r["chosen_scores"]).get(score), json.loads(r["rejected_scores"]).get(score)) for r in rows]
        pairs = np.array([p for p in pairs if None not in p], dtype=float).reshape(-1, 2)
        if len(pairs):
            out.append({"score": score, "pairs": len(pairs), **winner_agreement(pairs[:, 0], pairs[:, 1], higher)})
    return out


def _curve(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _summary(rows: list[dict]) -> dict | None:
    """Steps, and the mean of the last tenth of the run of each logged value."""
    if not rows:
        return None
    tail = rows[-max(1, len(rows) // 10):]
    return {"steps": rows[-1]["step"], **{k: float(np.mean([r[k] for r in tail])) for k in tail[0] if k != "step"}}
