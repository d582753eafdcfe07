#!/usr/bin/env bash
# Everything that needs a GPU, in one script (about 8 minutes on one H100/H200-class GPU):
#   1. the DPO-step benchmark on a random-initialised wan-audio 1.3b (Wan2.1-1.3B shapes, 480×832): ours
#      (cached latents, one batched winner+loser pass, LoRA reference) vs the diffusers recipe (VAE every step,
#      two full copies, separate passes), with step time, latent tokens/s, TFLOP/s and MFU against --peak-tflops;
#   2. a few real `train dpo` steps of that model through accelerate, bf16, with LoRA and with full fine-tuning
#      (frozen copy as the reference), on a small exported dataset made from the embedded world;
#   3. a summary.
# The CPU-size path runs the same on the tiny model:
#   bench/gpu_check.sh --size tiny --device cpu
# Usage: bench/gpu_check.sh [--size 1.3b|tiny] [--device cuda|cpu] [--peak-tflops 989] [--out DIR]
set -euo pipefail
SIZE=1.3b DEVICE=cuda PEAK=989 OUT=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --size) SIZE="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --peak-tflops) PEAK="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "gpu_check.sh: unknown option $1 (use --size, --device, --peak-tflops, --out)" >&2; exit 2 ;;
  esac
done
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PY" ]] || PY=python
OUT="${OUT:-$(mktemp -d)}"
# A rerun into the same folder would add the votes again and meet finished runs: a new folder each time.
[[ -z "$(ls -A "$OUT" 2>/dev/null)" ]] || { echo "gpu_check: --out $OUT is not empty; give a new folder" >&2; exit 2; }
mkdir -p "$OUT"
if [[ "$SIZE" == "tiny" ]]; then BATCH=2 STEPS=3 FRAMES=17 WINDOW=9 PRECISION=no; else BATCH=1 STEPS=3 FRAMES=17 WINDOW=17 PRECISION=bf16; fi
[[ "$DEVICE" == "cpu" ]] && PRECISION=no
LAUNCH=("$PY" -m accelerate.commands.launch --num_processes 1 --num_machines 1 --dynamo_backend no --mixed_precision "$PRECISION")
[[ "$DEVICE" == "cpu" ]] && LAUNCH+=(--cpu)
started=$SECONDS

echo "== 1. DPO-step benchmark: wan-audio $SIZE on $DEVICE"
"$PY" -m bench.dpo_step --family wan-audio --size "$SIZE" --device "$DEVICE" --batch "$BATCH" --steps "$STEPS" \
    --frames "$FRAMES" --peak-tflops "$PEAK" | tee "$OUT/bench.txt"

echo "== 2. train dpo on wan-audio $SIZE: a dataset, then LoRA and full fine-tuning"
"$PY" - "$OUT" "$SIZE" <<'PYTHON'
import sys
from pathlib import Path

from campaign.journal import JournalWriter
from campaign.store import Campaign
from data_schemas import Vote
from model_families.wan_audio import init_model
from pairs.export import export_pairs
from pairs.preferences.build import BuildOptions, build_pairs
from pairs.candidates.ingest import ingest_rows
from pairs.candidates.manifest import read_manifest
from world.build import build_world

out, size = Path(sys.argv[1]), sys.argv[2]
init_model(size, out / "model")
manifest = build_world(out / "world", conditions=2, seed=3, size=64, seconds=1.2)
campaign = Campaign.open(out / "campaign", create=True)
ingest_rows(campaign, read_manifest(manifest)[0], progress=False)
clips = campaign.table("clips").to_pylist()
votes = []
for condition in sorted({c["condition_id"] for c in clips}):
    shas = sorted(c["sha256"] for c in clips if c["condition_id"] == condition)
    for n, b in enumerate(shas[1:]):
        votes += [Vote(showing_id=f"{condition}{n}{who}", request_id=f"{condition}{n}{who}", annotator=who,
                       condition_id=condition, clip_a=shas[0], clip_b=b, left="a", criterion="lip_sync", choice="a")
                  for who in "xy"]
with JournalWriter(campaign.journal_path("votes"), Vote) as journal:
    journal.append(votes)
export_pairs(campaign, build_pairs(campaign, BuildOptions(criterion="lip_sync", heldout=0.0)), out / "dataset",
             embed_media=False, parquet=False)
PYTHON
"$PY" -m train.cli cache --dataset "$OUT/dataset" --model "$OUT/model" --out "$OUT/cache"
for mode in lora full; do
  extra=(); [[ "$mode" == "lora" ]] && extra=(--lora-rank 16)
  t0=$SECONDS
  "${LAUNCH[@]}" -m train.cli dpo --dataset "$OUT/dataset" --model "$OUT/model" --cache "$OUT/cache" \
      --out "$OUT/dpo-$mode" --steps 4 --batch-size "$BATCH" --window "$WINDOW" --warmup 1 --lr-schedule cosine \
      --gradient-checkpointing "${extra[@]}"
  echo "dpo-$mode: $((SECONDS - t0)) s" >> "$OUT/times.txt"
done

echo "== 3. summary ($((SECONDS - started)) s in all; files in $OUT)"
tail -n 1 "$OUT/bench.txt"
cat "$OUT/times.txt"
for mode in lora full; do
  "$PY" -c "import json,sys; rows=[json.loads(l) for l in open(sys.argv[1])]; print(sys.argv[2], 'losses', [round(r['loss'], 4) for r in rows], 'grad_norm', round(rows[-1]['grad_norm'], 4))" \
      "$OUT/dpo-$mode/metrics.jsonl" "dpo-$mode"
done
