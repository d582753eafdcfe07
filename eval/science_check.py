"""The end-to-end science check: does preference data about lip sync make the embedded model sync better?

Runs the public commands on the embedded world, as a user would:
`pairs generate` (shipped base model) → `pairs score` → `annotate serve --simulate` (scripted annotators
voting through the real JSON API, preferring the clip with the better SyncNet confidence, wrong 20 % of
the time) → `pairs build` → `pairs export` → `train dpo` and `train sft` (equal steps) → `evaluate report`.

It passes when (1) held-out implicit-reward accuracy is above 0.5 with its 95% CI, (2) the policy's
`sync/lse_c` beats the reference with a bootstrap 95% CI of the improvement above zero, and (3) DPO does
at least as well as SFT on `sync/lse_c`. Prints the table; exits 1 when a criterion fails.

    python -m eval.science_check --out runs/science [--conditions 16] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _run(*command: str) -> None:
    print("$", " ".join(command), flush=True)
    began = time.time()
    subprocess.run([str(BIN / command[0]), *command[1:]], check=True)
    print(f"  ({time.time() - began:.0f} s)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--conditions", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--candidate-guidance", default="1.0,2.0",
                        help="guidance values the candidates alternate (diverse candidates give pairs a real gap)")
    parser.add_argument("--eval-guidance", type=float, default=1.0, help="guidance of the report's samples")
    parser.add_argument("--annotators", type=int, default=6)
    parser.add_argument("--votes", type=int, default=60, help="votes per scripted annotator")
    parser.add_argument("--heldout", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=300, help="DPO and SFT steps (equal)")
    parser.add_argument("--beta", type=float, default=2500.0)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--samples", type=int, default=4, help="report samples per held-out condition")
    parser.add_argument("--port", type=int, default=7871)
    args = parser.parse_args()
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    campaign, dataset, runs = out / "campaign", out / "dataset", out / "runs"
    began = time.time()
    _run("pairs", "generate", "--campaign", str(campaign), "--conditions", str(args.conditions),
         "--candidates", str(args.candidates), "--guidance", args.candidate_guidance)
    _run("pairs", "score", "--campaign", str(campaign), "--scorers", "sync,expression")
    _run("annotate", "serve", "--campaign", str(campaign), "--port", str(args.port), "--criteria", "lip_sync,overall",
         "--gold-rate", "0", "--simulate", str(args.annotators), "--simulate-votes", str(args.votes),
         "--simulate-score", "sync/lse_c", "--exit-after-simulation")
    _run("pairs", "build", "--campaign", str(campaign), "--out", str(out / "pairs.parquet"), "--criterion", "lip_sync",
         "--heldout", str(args.heldout))
    _run("pairs", "export", "--campaign", str(campaign), "--pairs", str(out / "pairs.parquet"), "--to-hf", str(dataset))
    for objective in ("dpo", "sft"):
        _run("train", objective, "--dataset", str(dataset), "--out", str(runs / objective), "--steps", str(args.steps),
             "--beta", str(args.beta), "--lr", str(args.lr))
    _run("evaluate", "report", "--dataset", str(dataset), "--policy", str(runs / "dpo"), "--sft", str(runs / "sft"),
         "--campaign", str(campaign), "--samples", str(args.samples), "--guidance", str(args.eval_guidance),
         "--out", str(out / "report"))
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    return _verdict(metrics, time.time() - began)


def _verdict(metrics: dict, seconds: float) -> int:
    implicit = metrics["implicit_reward"]["policy"]
    comparisons = metrics["generation"]["comparisons"]
    versus_reference = comparisons["policy_vs_reference"]["sync/lse_c"]
    versus_sft = comparisons["policy_vs_sft"]["sync/lse_c"]
    checks = [
        ("held-out implicit-reward accuracy > 0.5 (95% CI)", implicit["accuracy"], implicit["accuracy_ci"],
         implicit["accuracy_ci"][0] > 0.5),
        ("policy − reference sync/lse_c > 0 (95% CI)", versus_reference["improvement"],
         versus_reference["improvement_ci"], versus_reference["improvement_ci"][0] > 0),
        ("policy − SFT sync/lse_c ≥ 0", versus_sft["improvement"], versus_sft["improvement_ci"],
         versus_sft["improvement"] >= 0),
    ]
    print(f"\nscience check ({seconds / 60:.1f} min)")
    print(f"{'criterion':52} {'value':>8}  95% CI            result")
    for name, value, ci, ok in checks:
        print(f"{name:52} {value:8.3f}  [{ci[0]:6.3f}, {ci[1]:6.3f}]  {'pass' if ok else 'FAIL'}")
    means = metrics["generation"]["means"]
    print("sync/lse_c means: " + ", ".join(f"{k} {v['sync/lse_c']:.3f}" for k, v in means.items()))
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
