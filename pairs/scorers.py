"""The scorers `pairs score` can run, each with the version that names its code and weights.

A scorer whose weights cannot be found is not replaced by anything: `load_scorers` returns it among
the unavailable ones with the reason and the flag that fixes it, and the command says so once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from data_schemas import UserError
from pairs.evidence import ClipEvidence
from pairs.landmark_scores import expression, motion, quality

NAMES = ("sync", "identity", "expression", "motion", "quality")

# Which way each metric is better; None where more or less is not in itself better (how much the
# mouth moves, blinks, head motion, exposure, the sync offset's sign).
HIGHER_IS_BETTER: dict[str, bool | None] = {
    "sync/lse_c": True, "sync/lse_d": False, "sync/offset": None,
    "identity/csim": True,
    "expression/mouth_std": None, "expression/brow_std": None, "expression/blinks_per_minute": None,
    "expression/mouth_audio": True,
    "motion/head_motion": None, "motion/flicker": True, "motion/jitter": False,
    "quality/sharpness": True, "quality/exposure": None, "quality/clipped": False,
}


@dataclass(frozen=True)
class Scorer:
    name: str
    version: str  # code version + the weights that produced the values: part of the cache key
    metrics: tuple[str, ...]
    score: Callable[[ClipEvidence], dict[str, float | str]]  # a str is the reason a metric has no value
    needs_reference: bool = False


@dataclass(frozen=True)
class ScorerOptions:
    device: str = "cpu"
    batch_size: int = 16  # SyncNet windows per pass: larger batches leave the CPU cache and run slower
    precision: str = "fp32"  # SyncNet arithmetic: fp32 (equal to syncnet_python) or bf16 (faster, ~1e-3 off)
    syncnet_weights: Path | None = None  # None: the shipped embedded SyncNet
    arcface_model: Path | None = None  # None: dlib's offline face model


def _sync(options: ScorerOptions) -> Scorer | str:
    from pairs.sync_model import SHIPPED, WEIGHTS_FILE, load_syncnet
    from pairs.syncnet import sync_scores

    if options.syncnet_weights is None and not (SHIPPED / WEIGHTS_FILE).is_file():
        return "no SyncNet weights; pass --syncnet-weights PATH (syncnet_v2.model) or run `train syncnet`"
    weights = load_syncnet(options.syncnet_weights, options.device)
    metrics = ("lse_c", "lse_d", "offset")

    def score(clip: ClipEvidence) -> dict[str, float | str]:
        if clip.audio is None:
            return dict.fromkeys(metrics, "no audio track")
        result = sync_scores(weights.net, weights.crop, clip.frames, clip.fps, clip.track.landmarks, clip.audio,
                             options.batch_size, options.device, options.precision)
        if result is None:
            return dict.fromkeys(metrics, "shorter than one SyncNet window")
        return {"lse_c": result.lse_c, "lse_d": result.lse_d, "offset": float(result.offset)}

    # bf16 numbers differ slightly, so they are another version (and another cache entry).
    precision = "" if options.precision == "fp32" else f"+{options.precision}"
    return Scorer("sync", f"1+{weights.name}{precision}", metrics, score)


def _identity(options: ScorerOptions) -> Scorer | str:
    from pairs.identity import csim, load_embedder

    try:
        embedder = load_embedder(options.arcface_model)
    except ImportError as exc:
        return f"no face-recognition backend ({exc}); pass --arcface-model PATH with insightface installed"

    def score(clip: ClipEvidence) -> dict[str, float | str]:
        if clip.reference is None or clip.reference_track is None:
            return {"csim": "no reference image"}
        if not clip.reference_track.found[0]:
            return {"csim": "no face in the reference image"}
        return {"csim": csim(embedder, clip.frames, clip.track, clip.reference, clip.reference_track.landmarks[0])}

    return Scorer("identity", f"1+{embedder.name}", ("csim",), score, needs_reference=True)


def _landmark(name: str, function: Callable, metrics: tuple[str, ...]) -> Callable[[ScorerOptions], Scorer]:
    return lambda options: Scorer(name, "1", metrics, function)


_FACTORIES: dict[str, Callable[[ScorerOptions], Scorer | str]] = {
    "sync": _sync,
    "identity": _identity,
    "expression": _landmark("expression", expression, ("mouth_std", "brow_std", "blinks_per_minute", "mouth_audio")),
    "motion": _landmark("motion", motion, ("head_motion", "flicker", "jitter")),
    "quality": _landmark("quality", quality, ("sharpness", "exposure", "clipped")),
}


def load_scorers(names: list[str], options: ScorerOptions) -> tuple[list[Scorer], dict[str, str]]:
    """The requested scorers ready to run, and {name: why it cannot run} for the rest."""
    from pairs.syncnet import PRECISIONS

    if options.precision not in PRECISIONS:
        raise UserError(f"--precision {options.precision}: choose {' or '.join(PRECISIONS)}")
    unknown = [n for n in names if n not in _FACTORIES]
    if unknown:
        raise UserError(f"--scorers: unknown {', '.join(unknown)}; available: {', '.join(NAMES)}")
    ready, unavailable = [], {}
    for name in names:
        made = _FACTORIES[name](options)
        if isinstance(made, str):
            unavailable[name] = made
        else:
            ready.append(made)
    return ready, unavailable
