"""The end-to-end science check: does preference data about lip sync make the embedded model sync better?

Runs the public commands on the embedded world, as a user would:
`pairs generate` (shipped base model) → `pairs score` → `annotate serve --simulate` (scripted annotators
voting through the real JSON API for the clip with the higher `--annotators-prefer` signal, wrong 20 % of
the time) → `pairs build` → `pairs export` → `train dpo` and `train sft` (equal steps) → `evaluate report`.

Each signal can only teach what it tells apart: the candidates of a condition must differ in it by more
than its measurement noise, or the annotators' labels are noise and no model ranks held-out pairs above
chance. With guidance 1.0 and 2.0 (64 px) SyncNet's `sync/lse_c` sees the guidance gap (0.21, against sd
0.025 when a clip is only re-encoded), but the landmark score `expression/mouth_audio` hardly does (gap 0.04,
re-encode sd 0.09), and the landmark direction failed. The defaults are what passes both ways (README
"Example report and the science check"): candidates at guidance 0.5 and 2.0, β 10000, and 64 conditions with
240 votes per annotator, so the landmark direction's held-out accuracy, near its labels' noise, is measured
on 96 pairs.

The check does not grade itself: the annotators prefer by one signal (default the landmark mouth–audio
agreement, `expression/mouth_audio`) and the evaluation judges by an independent one (default SyncNet's
`sync/lse_c`); then the reverse is run on the same candidates (annotators follow the judge's signal, the
evaluation judges by theirs), unless `--one-way`. Each run passes when (1) held-out implicit-reward
accuracy is above 0.5 with its 95% CI, (2) the policy beats the reference on the judge's signal with a
bootstrap 95% CI of the improvement above zero, (3) DPO does at least as well as SFT on it, and (4) no other
lip-sync measure (`LIP_SYNC`) is worse than the reference's with its 95% CI wholly below zero: a policy that
games one measure fails on another (runs at β 2500 drew a dark blotch for a mouth that raised LSE-C and the
landmark agreement while LSE-D fell by 0.6). Prints a table per run; exits 1 when a criterion of any run fails.

With `--dense` the scripted annotators also mark, on the clip they vote against, the seconds where SyncNet finds
its lip sync worse than the other clip's (annotate/simulated_marks.py), and `train dpo --dense` weighs latent
frames by those marks; the marks come from SyncNet, so every run's annotators must prefer a `sync/` signal.

    python -m eval.science_check --out runs/science [--annotators-prefer expression/mouth_audio]
        [--judge sync/lse_c] [--one-way] [--assign round-robin|active] [--dense] [--conditions 64] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pairs.scoring.scorers import HIGHER_IS_BETTER

BIN = Path(sys.executable).parent
LIP_SYNC = ("sync/lse_c", "sync/lse_d", "expression/mouth_audio")  # criterion (4): none may get worse


def _run(*command: str) -> None:
    print("$", " ".join(command), flush=True)
    began = time.time()
    subprocess.run([str(BIN / command[0]), *command[1:]], check=True)
    print(f"  ({time.time() - began:.0f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--conditions", type=int, default=64)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--candidate-guidance", default="0.5,2.0",
                        help="guidance values the candidates alternate: each signal needs a gap between candidates "
                             "larger than its measurement noise")
    parser.add_argument("--eval-guidance", type=float, default=1.0, help="guidance of the report's samples")
    parser.add_argument("--annotators", type=int, default=6)
    parser.add_argument("--votes", type=int, default=240, help="votes per scripted annotator")
    parser.add_argument("--heldout", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=300, help="DPO and SFT steps (equal)")
    parser.add_argument("--beta", type=float, default=10000.0)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--samples", type=int, default=4, help="report samples per held-out condition")
    parser.add_argument("--port", type=int, default=7871)
    parser.add_argument("--annotators-prefer", default="expression/mouth_audio", metavar="SIGNAL",
                        help="scorer/metric the scripted annotators prefer (higher is better)")
    parser.add_argument("--judge", default="sync/lse_c", metavar="SIGNAL",
                        help="scorer/metric the evaluation judges the models by; must differ from the annotators'")
    parser.add_argument("--one-way", action="store_true",
                        help="skip the reverse run (annotators prefer the judge's signal, judged by theirs)")
    parser.add_argument("--assign", choices=("round-robin", "active"), default="round-robin",
                        help="how annotate serve assigns items to the scripted annotators")
    parser.add_argument("--dense", action="store_true",
                        help="scripted annotators mark where the clip they vote against fails lip sync (SyncNet per "
                             "second) and train dpo weighs latent frames by the marks; annotators must prefer sync/")
    args = parser.parse_args(argv)
    runs = [(args.annotators_prefer, args.judge)] + ([] if args.one_way else [(args.judge, args.annotators_prefer)])
    problem = _signal_problem(runs, args.dense)
    if problem:
        parser.error(problem)
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    candidates = out / "candidates"
    began = time.time()
    _run("pairs", "generate", "--campaign", str(candidates), "--conditions", str(args.conditions),
         "--candidates", str(args.candidates), "--guidance", args.candidate_guidance)
    scorers = sorted({signal.split("/")[0] for run in runs for signal in run})
    _run("pairs", "score", "--campaign", str(candidates), "--scorers", ",".join(scorers))
    verdicts = []
    for prefer, judge in runs:
        run_dir = out / f"prefer-{prefer.replace('/', '-')}"
        campaign, dataset, models = run_dir / "campaign", run_dir / "dataset", run_dir / "runs"
        shutil.copytree(candidates, campaign)  # the same candidates and scores, votes of its own
        _run("annotate", "serve", "--campaign", str(campaign), "--port", str(args.port), "--criteria",
             "lip_sync,overall", "--gold-rate", "0", "--assign", args.assign, "--simulate", str(args.annotators),
             "--simulate-votes", str(args.votes), "--simulate-score", prefer, "--exit-after-simulation",
             *(["--simulate-marks"] if args.dense else []))
        _run("pairs", "build", "--campaign", str(campaign), "--out", str(run_dir / "pairs.parquet"), "--criterion",
             "lip_sync", "--heldout", str(args.heldout))
        _run("pairs", "export", "--campaign", str(campaign), "--pairs", str(run_dir / "pairs.parquet"), "--to-hf",
             str(dataset))
        for objective in ("dpo", "sft"):
            _run("train", objective, "--dataset", str(dataset), "--out", str(models / objective), "--steps",
                 str(args.steps), "--beta", str(args.beta), "--lr", str(args.lr),
                 *(["--dense"] if args.dense and objective == "dpo" else []))
        _run("evaluate", "report", "--dataset", str(dataset), "--policy", str(models / "dpo"), "--sft",
             str(models / "sft"), "--campaign", str(campaign), "--samples", str(args.samples), "--guidance",
             str(args.eval_guidance), "--out", str(run_dir / "report"))
        metrics = json.loads((run_dir / "report" / "metrics.json").read_text())
        verdicts.append(_verdict(metrics, prefer, judge))
    print(f"\nscience check: {len(runs)} run(s), {(time.time() - began) / 60:.1f} min, "
          f"{'pass' if all(verdicts) else 'FAIL'}")
    return 0 if all(verdicts) else 1


def _signal_problem(runs: list[tuple[str, str]], dense: bool) -> str | None:
    """Why these (annotators prefer, judge) runs cannot be made, or None."""
    directed = ", ".join(k for k, v in HIGHER_IS_BETTER.items() if v)
    for prefer, judge in runs:
        if dense and not prefer.startswith("sync/"):
            return (f"--dense: the scripted marks come from SyncNet, but a run's annotators prefer {prefer}; use "
                    "--annotators-prefer sync/lse_c --judge expression/mouth_audio --one-way")
        if prefer == judge:
            return (f"--annotators-prefer and --judge are both {prefer}: the check would grade itself; "
                    "judge by an independent signal")
        if HIGHER_IS_BETTER.get(prefer) is not True:
            return (f"annotators prefer {prefer}: scripted annotators follow a higher-is-better signal; "
                    f"choose one of {directed}")
        if HIGHER_IS_BETTER.get(judge) is None:
            return f"judge {judge}: no better direction to judge by; choose one of {directed}"
    return None


def _verdict(metrics: dict, prefer: str, judge: str) -> bool:
    """Print one run's table; whether every criterion passed."""
    implicit = metrics["implicit_reward"]["policy"]
    comparisons = metrics["generation"]["comparisons"]
    versus_reference = comparisons["policy_vs_reference"][judge]
    versus_sft = comparisons["policy_vs_sft"][judge]
    checks = [
        ("held-out implicit-reward accuracy > 0.5 (95% CI)", implicit["accuracy"], implicit["accuracy_ci"],
         implicit["accuracy_ci"][0] > 0.5),
        (f"policy − reference {judge} > 0 (95% CI)", versus_reference["improvement"],
         versus_reference["improvement_ci"], versus_reference["improvement_ci"][0] > 0),
        (f"policy − SFT {judge} ≥ 0", versus_sft["improvement"], versus_sft["improvement_ci"],
         versus_sft["improvement"] >= 0),
    ] + [(f"policy − reference {metric} not < 0 (95% CI)", compared["improvement"], compared["improvement_ci"],
          compared["improvement_ci"][1] >= 0)
         for metric, compared in comparisons["policy_vs_reference"].items()
         if metric in LIP_SYNC and metric != judge and "improvement_ci" in compared]
    print(f"\nannotators prefer {prefer}, judged by {judge}")
    print(f"{'criterion':60} {'value':>8}  95% CI            result")
    for name, value, ci, ok in checks:
        print(f"{name:60} {value:8.3f}  [{ci[0]:6.3f}, {ci[1]:6.3f}]  {'pass' if ok else 'FAIL'}")
    means = metrics["generation"]["means"]
    print(f"{judge} means: " + ", ".join(f"{k} {v[judge]:.3f}" for k, v in means.items()))
    return all(ok for *_, ok in checks)

if __name__ == "__main__":
    sys.exit(main())
