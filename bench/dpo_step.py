"""One Diffusion-DPO step, ours vs the way the reference scripts do it, on the same model and batch.

ours: latents cached once, winner and loser in one batched forward pass, the reference being the same
network with its LoRA adapters disabled (one copy of the weights).
baseline: two full models (policy + frozen copy), separate forward passes for winner and loser, and
every step decodes the mp4s and encodes them again (with `--family wan-audio`: through the Wan VAE, and the
audio through wav2vec2, as the diffusers recipe runs its encoders every step).
ours-checkpointing: ours with `--gradient-checkpointing`.
ours-full (wan-audio): ours, but full fine-tuning against a frozen copy (cached latents, batched passes).
What each process holds with `--family wan-audio` (as `train cache` then `train dpo --cache` split the work):
- prepare (untimed, unmeasured): the random-initialised model saved as a model folder, the clips rendered.
- cache fill (once; printed on its own line, in no row): loads the model folder, decodes every mp4, encodes the
  clips and reference images through the VAE and the audio through wav2vec2, and writes them with the real cache
  writers (train/latent_cache.py's open_writers and write_fixed_latents, as train/cache_job.py's fill does; the
  pairs are keyed by name rather than read from an exported dataset), the grey clip's blank latents included.
  Its seconds per pair are the one-off cost a run amortises over its epochs.
- ours*: loads the model folder as `train dpo` does (load_model: the transformer; the VAE and wav2vec2 load only
  when first used, and with the blank latents in the cache they never are), opens the cache memory-mapped
  (open_cache) and reads each step's batch from it.
- baseline: unchanged - builds the model in memory, renders its clips, and every step decodes and encodes them.
With `--family embedded`, ours still encodes its latents once inside its measured process.
Each runs in its own process. Memory, measured the same way for every variant:
- work MiB: what the training work itself adds. On CPU: the process's peak resident memory (VmHWM) minus its
  resident memory (VmRSS) right after the imports (torch, diffusers, transformers, peft) and the thread setup,
  before any model, clip or latent exists; so it counts the weights (and any second copy), the encoders'
  activations, the cached latents, activations, gradients and optimiser state, and not the libraries' own
  resident memory, which every variant carries alike. On CUDA: max allocated (nothing is on the GPU before).
- peak MiB: the whole process's peak (VmHWM on CPU; max allocated on CUDA).
Prints pairs/s, both memory figures, the ratios, the step time and the model FLOPs per step (counted by torch's
FlopCounterMode on one step), hence achieved TFLOP/s, latent tokens/s and, given the device's peak
(`--peak-tflops`, e.g. 989 for an H100's dense bf16), the model FLOPs utilisation; the last line is
`ratio throughput=X memory=Y` (ours over baseline; memory: work MiB). On CUDA the wan-audio steps run under bf16
autocast.

    python -m bench.dpo_step [--family embedded|wan-audio] [--size tiny|1.3b] [--batch 4] [--steps 6]
                             [--frames 16] [--device cuda] [--peak-tflops 989]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.pairs_build import peak_rss_mib
from media_io.codecs import read_frames, write_video
from data_schemas.constants import FPS
from world.build import make_condition, reference_image, render_clip
from train.loss import diffusion_dpo_loss
from model_families.embedded.motion_features import motion_features
from model_families.registry import load_model
from model_families.family import ConditionInputs
from model_families.targets import model_timestep, noisy_and_target, sample_timesteps
from train.preference_data import stack_conditioning


# The run prints the docstring's account of what each process holds, so the two cannot drift apart.
PROCESSES = __doc__[__doc__.index("What each process holds"):__doc__.index("With `--family embedded`")].rstrip()
VARIANTS = ("ours", "ours-checkpointing", "baseline")
FAMILY_VARIANTS = ("ours", "ours-checkpointing", "ours-full", "baseline")


def rendered_pair(folder: Path, i: int, frames: int) -> tuple[object, Path, Path]:
    """World condition `i` and its (in-sync winner, audio-shifted loser) clips written under `folder`."""
    condition = make_condition(5, i, size=64, seconds=frames / FPS)
    paths = []
    for name, degradation in (("w", None), ("l", "shift")):
        path = folder / f"{i}{name}.mp4"
        write_video(path, render_clip(condition, degradation)[:frames], FPS, condition.audio)
        paths.append(path)
    return condition, *paths


def clips(folder: Path, batch: int, frames: int) -> list[tuple[Path, Path, np.ndarray, np.ndarray]]:
    """`batch` (winner mp4, loser mp4, reference image, motion) from the embedded world."""
    out = []
    for i in range(batch):
        condition, winner, loser = rendered_pair(folder, i, frames)
        out.append((winner, loser, reference_image(condition), motion_features(condition.audio, condition.pose, FPS, frames)))
    return out


def resident_mib() -> float:
    """This process's resident memory now (VmRSS: /proc/self/statm's resident pages)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(setup_mib: float, device: str) -> dict:
    """{"work_mib", "peak_mib"} (see the module docstring); `setup_mib` is the resident memory before any model."""
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
        return {"work_mib": peak, "peak_mib": peak}
    peak = peak_rss_mib()
    return {"work_mib": peak - setup_mib, "peak_mib": peak}


def run(which: str, folder: Path, batch: int, steps: int, frames: int, device: str) -> dict:
    from peft import LoraConfig

    torch.manual_seed(0)
    torch.set_num_threads(2)
    setup = resident_mib()
    pipeline = load_model("embedded", device)
    scheduler, policy = pipeline.scheduler, pipeline.denoiser.train()
    items = clips(folder, batch, frames)
    refs = pipeline.reference_latent(np.stack([i[2] for i in items])).to(device)
    motion = torch.from_numpy(np.stack([i[3] for i in items])).to(device)
    if which.startswith("ours"):
        if which == "ours-checkpointing":
            policy.enable_gradient_checkpointing()
        policy.add_adapter(LoraConfig(r=8, lora_alpha=8, target_modules=list(pipeline.lora_targets), init_lora_weights="gaussian"))
        cached = [pipeline.encode(np.stack([read_frames(i[k]) for i in items])).to(device) for k in (0, 1)]
        reference = None
    else:
        reference, cached = copy.deepcopy(policy).eval().requires_grad_(False), None
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-6)
    seconds, flops = timed_steps(lambda step: dpo_step(which, pipeline, policy, reference, cached, items, refs, motion,
                                                       optimizer, batch, step, device), steps, device)
    return {"which": which, "pairs_per_s": batch * steps / seconds, **memory(setup, device), "step_s": seconds / steps,
            "flops_per_step": flops}


def family_inputs(folder: Path, batch: int, frames: int) -> list[tuple[Path, Path, ConditionInputs]]:
    """`batch` (winner mp4, loser mp4, condition) from the embedded world, for any model family."""
    out = []
    for i in range(batch):
        condition, winner, loser = rendered_pair(folder, i, frames)
        out.append((winner, loser, ConditionInputs(f"c{i}", None, reference_image(condition), condition.audio,
                                                   condition.pose, FPS, frames)))
    return out


def encode_batch(family, items, frames: int):
    """(winner latents, loser latents, conditioning): every mp4 decoded and encoded, every condition encoded."""
    latents = [torch.stack([family.encode_video(read_frames(item[k])[:frames]) for item in items]) for k in (0, 1)]
    return (*latents, stack_conditioning([family.encode_condition(item[2]) for item in items]))


def prepare(work: Path, size: str, frames: int, batch: int) -> None:
    """Untimed set-up for ours (wan-audio): the random-initialised model saved as a folder and the clips rendered."""
    from model_families.wan_audio.sizes import build_family

    family = build_family(size)
    family.save(work / "model", "bench.dpo_step model\n")
    (work / "clips").mkdir()
    family_inputs(work / "clips", batch, family.usable_frames(frames))


def fill(work: Path, batch: int, frames: int, device: str) -> dict:
    """`train cache`'s work for the bench's pairs: the model folder loaded, every mp4 decoded and VAE-encoded, every
    condition encoded (VAE + wav2vec2), all written by the real cache writers (train/latent_cache.py)."""
    from train.latent_cache import open_writers, write_fixed_latents

    torch.set_num_threads(2)
    setup = resident_mib()
    started = time.perf_counter()
    family = load_model(work / "model", device)
    frames = family.usable_frames(frames)
    items = family_inputs(work / "clips", batch, frames)  # the same seeded clips prepare() wrote
    clips, conditions = open_writers(work / "cache", family, shard_size=64, is_main=True)
    for i, (winner, loser, inputs) in enumerate(items):
        for name, path in (("w", winner), ("l", loser)):
            clips[f"{i}{name}"] = family.encode_video(read_frames(path)[:frames])
        conditions[inputs.condition_id] = family.encode_condition(inputs)
    clips.flush()
    conditions.flush()
    write_fixed_latents(work / "cache", family, len(clips["0w"]))
    return {"which": "cache-fill", "seconds": time.perf_counter() - started, "pairs": batch,
            **memory(setup, device)}


def cached_batch(clips, conditions, batch: int):
    """(winner latents, loser latents, conditioning) read from the memory-mapped cache, as the trainer reads them."""
    latents = [torch.stack([clips[f"{i}{name}"] for i in range(batch)]) for name in ("w", "l")]
    return (*latents, stack_conditioning([conditions[f"c{i}"] for i in range(batch)]))


def run_family(which: str, folder: Path, work: Path, size: str, batch: int, steps: int, frames: int,
               device: str) -> dict:
    """One variant's timed DPO steps on a random-initialised wan-audio model of `size`: ours loads the model folder
    and reads the cache in `work` (as `train dpo --model DIR --cache CACHE`); the baseline builds the model and
    renders its clips in `folder`, and encodes them every step."""
    from peft import LoraConfig

    from model_families.wan_audio.sizes import build_family
    from train.dpo import Reference
    from train.latent_cache import open_cache
    from train.pair_errors import pair_batch, pair_errors

    torch.manual_seed(0)
    torch.set_num_threads(2)
    setup = resident_mib()
    ours = which.startswith("ours")
    if ours:  # the real trainer's load
        family = load_model(work / "model", device)
        clips, conditions = open_cache(work / "cache", family)
    else:
        family = build_family(size)
        for part in (family.denoiser, family.vae, family.audio_encoder):
            part.to(device)
        items = family_inputs(folder, batch, family.usable_frames(frames))
    policy = family.denoiser.train().requires_grad_(True)
    frames = family.usable_frames(frames)
    if which in ("ours", "ours-checkpointing"):
        if which == "ours-checkpointing":
            policy.enable_gradient_checkpointing()
        policy.add_adapter(LoraConfig(r=16, lora_alpha=16, target_modules=list(family.lora_targets),
                                      init_lora_weights="gaussian"))
        reference = Reference()
    else:
        reference = Reference(copy.deepcopy(policy).eval().requires_grad_(False))
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-6)
    autocast = torch.autocast("cuda", torch.bfloat16) if device == "cuda" else contextlib.nullcontext()

    def step_once(step: int) -> None:
        with autocast:
            if ours:
                winners, losers, conditioning = cached_batch(clips, conditions, batch)
            else:
                winners, losers, conditioning = encode_batch(family, items, frames)
            generator = torch.Generator().manual_seed(step)
            noise = torch.randn(winners.shape, generator=generator)
            timesteps = sample_timesteps(batch, generator)
            if ours:  # one batched pass of winners and losers, each network
                pairs = pair_batch(family.scheduler, winners, losers, conditioning, noise, timesteps, device)
                errors = (*pair_errors(family, policy, pairs), *reference.errors(family, policy, pairs))
            else:  # separate passes: winners, then losers, through the policy and then the frozen copy
                t = model_timestep(family.scheduler, timesteps).to(device)
                cond = {k: v.to(device) for k, v in conditioning.items()}
                errors = []
                for model, grad in ((policy, True), (reference.frozen, False)):
                    for clean in (winners, losers):
                        noisy, target = noisy_and_target(family.scheduler, clean, noise, timesteps)
                        with torch.set_grad_enabled(grad):
                            prediction = family.predict(model, noisy.to(device), t, cond)
                            errors.append((prediction.float() - target.to(device)).pow(2).flatten(1).mean(1))
            loss, _ = diffusion_dpo_loss(*errors, beta=2500.0)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    seconds, flops = timed_steps(step_once, steps, device)
    used = memory(setup, device)
    latent = (clips["0w"] if ours else family.encode_video(read_frames(items[0][0])[:frames])).shape  # [T, C, h, w]
    tokens = 2 * batch * latent[0] * latent[2] * latent[3] // 4  # winner+loser latent tokens (2×2 patches)
    return {"which": which, "pairs_per_s": batch * steps / seconds, **used, "step_s": seconds / steps,
            "flops_per_step": flops, "tokens_per_s": tokens * steps / seconds}


def timed_steps(step_once, steps: int, device: str) -> tuple[float, int]:
    """(seconds of `steps` timed calls of step_once(step), FLOPs of one step): step 0 warms up and step 1 counts
    FLOPs; neither is timed."""
    started, flops = None, 0
    for step in range(steps + 2):
        if step == 2:
            synchronize(device)
            started = time.perf_counter()
        counter = FlopCounterMode(display=False) if step == 1 else contextlib.nullcontext()
        with counter:
            step_once(step)
        if step == 1:
            flops = counter.get_total_flops()
    synchronize(device)
    return time.perf_counter() - started, flops


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def dpo_step(which, pipeline, policy, reference, cached, items, refs, motion, optimizer, batch, step, device) -> None:
    scheduler = pipeline.scheduler
    generator = torch.Generator().manual_seed(step)
    if which.startswith("ours"):
        winners, losers = cached
    else:  # decoded and encoded again on every step
        winners, losers = (pipeline.encode(np.stack([read_frames(i[k]) for i in items])).to(device) for k in (0, 1))
    noise = torch.randn(winners.shape, generator=generator).to(device)
    timesteps = sample_timesteps(batch, generator)
    t = model_timestep(scheduler, timesteps).to(device)
    if which.startswith("ours"):
        noisy, target = noisy_and_target(scheduler, torch.cat([winners, losers]), torch.cat([noise, noise]),
                                         torch.cat([timesteps, timesteps]))
        args = (noisy, torch.cat([t, t]), torch.cat([refs, refs]), torch.cat([motion, motion]))
        err = (policy(*args) - target).pow(2).flatten(1).mean(1)
        with torch.no_grad():
            policy.disable_adapters()
            ref_err = (policy(*args) - target).pow(2).flatten(1).mean(1)
            policy.enable_adapters()
        errors = (err[:batch], err[batch:], ref_err[:batch], ref_err[batch:])
    else:
        errors = []
        for model, grad in ((policy, True), (reference, False)):
            for clean in (winners, losers):
                noisy, target = noisy_and_target(scheduler, clean, noise, timesteps)
                with torch.set_grad_enabled(grad):
                    errors.append((model(noisy, t, refs, motion) - target).pow(2).flatten(1).mean(1))
        errors = (errors[0], errors[1], errors[2], errors[3])
    loss, _ = diffusion_dpo_loss(*errors, beta=2500.0)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def measure(args: argparse.Namespace) -> dict:
    """One `--measure` subprocess's result."""
    if args.measure == "prepare":
        prepare(args.work, args.size, args.frames, args.batch)
        return {}
    if args.measure == "fill":
        return fill(args.work, args.batch, args.frames, args.device)
    with tempfile.TemporaryDirectory() as folder:
        if args.family == "embedded":
            return run(args.measure, Path(folder), args.batch, args.steps, args.frames, args.device)
        return run_family(args.measure, Path(folder), args.work, args.size, args.batch, args.steps, args.frames,
                          args.device)


def subprocess_result(which: str, args: argparse.Namespace, work: Path) -> dict:
    """Run `--measure which` in its own process; its JSON result."""
    out = subprocess.run([sys.executable, "-m", "bench.dpo_step", "--measure", which, "--family", args.family,
                          "--size", args.size, "--batch", str(args.batch), "--steps", str(args.steps),
                          "--frames", str(args.frames), "--device", args.device, "--work", str(work)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{which} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("embedded", "wan-audio"), default="embedded")
    parser.add_argument("--size", choices=("tiny", "1.3b"), default="tiny", help="wan-audio size")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--frames", type=int, default=16, help="video frames (wan-audio: cut to 4k+1)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak TFLOP/s, for the FLOPs utilisation")
    parser.add_argument("--measure", choices=(*FAMILY_VARIANTS, "prepare", "fill"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)  # wan-audio: model folder, clips and cache
    args = parser.parse_args()
    variants = VARIANTS if args.family == "embedded" else FAMILY_VARIANTS
    if args.measure:
        print(json.dumps(measure(args)))
        return
    with tempfile.TemporaryDirectory() as work:
        steps = variants if args.family == "embedded" else ("prepare", "fill", *variants)
        results = {which: subprocess_result(which, args, Path(work)) for which in steps}
    model = "embedded model" if args.family == "embedded" else f"wan-audio {args.size} (random init)"
    print(f"{model}, batch {args.batch} pairs × {args.frames} frames, {args.steps} timed steps, {args.device}")
    if args.device == "cpu":
        print("work MiB = peak resident memory (VmHWM) − resident memory after imports, before any model or data "
              "(the training work itself); peak MiB = the whole process's peak (VmHWM)")
    else:
        print("work MiB = peak MiB = max CUDA memory allocated")
    if args.family == "wan-audio":
        print(PROCESSES)
    base = results["baseline"]
    print(f"{'':19} {'pairs/s':>8} {'work MiB':>9} {'peak MiB':>9} {'× throughput':>13} {'× work':>7} {'× peak':>7} "
          f"{'step ms':>8} {'GFLOP/step':>11} {'TFLOP/s':>8} {'tokens/s':>9} {'MFU':>6}")
    for which in variants:
        r = results[which]
        achieved = r["flops_per_step"] / r["step_s"] / 1e12
        mfu = f"{achieved / args.peak_tflops:6.1%}" if args.peak_tflops else f"{'–':>6}"
        tokens = f"{r['tokens_per_s']:9.0f}" if "tokens_per_s" in r else f"{'–':>9}"
        print(f"{which:19} {r['pairs_per_s']:8.2f} {r['work_mib']:9.0f} {r['peak_mib']:9.0f} "
              f"{r['pairs_per_s'] / base['pairs_per_s']:13.2f} {r['work_mib'] / base['work_mib']:7.2f} "
              f"{r['peak_mib'] / base['peak_mib']:7.2f} {r['step_s'] * 1e3:8.0f} {r['flops_per_step'] / 1e9:11.1f} "
              f"{achieved:8.3f} {tokens} {mfu}")
    if "fill" in results:
        fill_result = results["fill"]
        per_pair = fill_result["seconds"] / fill_result["pairs"]
        print(f"cache fill (once, own process, not in any row above): {fill_result['seconds']:.2f} s for "
              f"{fill_result['pairs']} pairs = {per_pair * 1e3:.0f} ms/pair, work {fill_result['work_mib']:.0f} MiB, "
              f"peak {fill_result['peak_mib']:.0f} MiB; amortised over E epochs: +{per_pair * 1e3:.0f}/E ms per pair")
    ours = results["ours"]
    print(f"peak memory (whole process) ours/baseline={ours['peak_mib'] / base['peak_mib']:.2f}")
    print(f"ratio throughput={ours['pairs_per_s'] / base['pairs_per_s']:.2f} "
          f"memory={ours['work_mib'] / base['work_mib']:.2f}")


if __name__ == "__main__":
    main()
