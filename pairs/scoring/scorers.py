"""The scorers `pairs score` can run, each with the version that names its code and weights.

A scorer whose weights cannot be found is not replaced by anything: `load_scorers` returns it among
the unavailable ones with the reason and the flag that fixes it, and the command says so once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from cli_kit.options import check_choices, option

from data_schemas import UserError
from pairs.scoring.evidence import ClipEvidence
from pairs.scoring.landmark_scores import expression, motion, quality

Name = Literal["sync", "identity", "expression", "motion", "quality"]
NAMES: tuple[str, ...] = get_args(Name)
Device = Literal["cpu", "cuda"]
Precision = Literal["fp32", "bf16"]  # SyncNet arithmetic
PRECISIONS: tuple[str, ...] = get_args(Precision)

# Scores without a mark (`Score.details["mark"]`, e.g. "no sync peak"): the ones pairs and scripted
# annotators may follow. SQL over a scores table; scores written before marks existed have none.
UNMARKED_SQL = "json_extract_string(details, '$.mark') IS NULL"

# Which way each metric is better; None where more or less is not in itself better (how much the
# mouth moves, blinks, head motion, exposure, the sync offset's sign).
HIGHER_IS_BETTER: dict[str, bool | None] = {
    "sync/lse_c": True, "sync/lse_c_at_0": True, "sync/lse_d": False, "sync/offset": None,
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
    # The mark a clip's values carry when they are not to be trusted (e.g. "no sync peak"), from its values.
    mark: Callable[[dict[str, float]], str | None] = lambda values: None
    # Said once by `pairs score` when most clips it scored got a mark: what they mean and the fix.
    mark_advice: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScorerOptions:
    """How the scorers run and which weights they use."""

    scorers: tuple[Name, ...] = option(NAMES, "Scorers to run.")
    device: Device = option("cpu", "Where SyncNet runs.")
    # Larger batches leave the CPU cache and run slower.
    batch_size: int = option(16, "SyncNet windows per forward pass.", minimum=1)
    precision: Precision = option("fp32", "SyncNet arithmetic: fp32 (equals syncnet_python) or bf16 (faster, ~1e-3 off).")
    syncnet_weights: Path | None = option(None, "syncnet_python's syncnet_v2.model (or a `train syncnet` folder); "
                                          "default: the shipped embedded SyncNet.")
    arcface_model: Path | None = option(None, "insightface model pack folder (e.g. buffalo_l) or ArcFace .onnx; "
                                        "default: dlib's offline model.")

    def __post_init__(self) -> None:
        check_choices(self)


def _sync(options: ScorerOptions) -> Scorer | str:
    from syncnet.networks import SHIPPED, WEIGHTS_FILE, load_syncnet
    from syncnet.lse import NO_SYNC_PEAK, has_sync_peak, sync_scores
    from pairs.processes import process_device

    if options.syncnet_weights is None and not (SHIPPED / WEIGHTS_FILE).is_file():
        return "no SyncNet weights; pass --syncnet-weights PATH (syncnet_v2.model) or run `train syncnet`"
    device = process_device(options.device)
    weights = load_syncnet(options.syncnet_weights, device)
    metrics = ("lse_c", "lse_c_at_0", "lse_d", "offset")

    def score(clip: ClipEvidence) -> dict[str, float | str]:
        if clip.audio is None:
            return dict.fromkeys(metrics, "no audio track")
        result = sync_scores(weights.net, weights.crop, clip.frames, clip.fps, clip.track.landmarks, clip.audio,
                             options.batch_size, device, options.precision)
        if result is None:
            return dict.fromkeys(metrics, "shorter than one SyncNet window")
        return {"lse_c": result.lse_c, "lse_c_at_0": result.lse_c_at_0, "lse_d": result.lse_d,
                "offset": float(result.offset)}

    def mark(values: dict[str, float]) -> str | None:
        return None if has_sync_peak(values["lse_c"], values["offset"], weights.confidence_floor) else NO_SYNC_PEAK

    advice = ("sync: the embedded SyncNet, trained only on the drawn world, found no sync peak in most clips: on "
              "footage unlike its world its LSE numbers are not comparable (marked `no sync peak`, left out of "
              "pairs); pass --syncnet-weights PATH/syncnet_v2.model (syncnet_python's weights) to score real faces"
              ) if weights.world_trained else None
    # bf16 numbers differ slightly, so they are another version (and another cache entry).
    precision = "" if options.precision == "fp32" else f"+{options.precision}"
    return Scorer("sync", f"2+{weights.name}{precision}", metrics, score, mark=mark, mark_advice=advice)


def _identity(options: ScorerOptions) -> Scorer | str:
    from pairs.scoring.identity import csim, load_embedder

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


def load_scorers(options: ScorerOptions) -> tuple[list[Scorer], dict[str, str]]:
    """The chosen scorers ready to run, and {name: why it cannot run} for the rest."""
    ready, unavailable = [], {}
    for name in options.scorers:
        made = _FACTORIES[name](options)
        if isinstance(made, str):
            unavailable[name] = made
        else:
            ready.append(made)
    return ready, unavailable
