"""The report's plots, as PNG bytes (matplotlib without a display)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def margin_histogram(margins: dict[str, np.ndarray]) -> bytes:
    """Implicit reward margins on held-out pairs; right of zero the model prefers the human winner."""
    figure, axis = plt.subplots(figsize=(6, 3.2))
    values = np.concatenate(list(margins.values()))
    bins = np.histogram_bin_edges(values, bins=min(30, max(5, len(values) // 3)))
    for name, margin in margins.items():
        axis.hist(margin, bins=bins, alpha=0.55, label=f"{name} (acc {np.mean(margin > 0):.2f})")
    axis.axvline(0, color="black", linewidth=1)
    axis.set_xlabel("implicit reward margin (vs reference)")
    axis.set_ylabel("held-out pairs")
    axis.legend()
    return _png(figure)


def win_rates(comparisons: dict[str, dict[str, dict]]) -> bytes:
    """Forest plot of the paired win rate over the reference per metric and model, with bootstrap 95% CIs;
    0.5 is a draw. Results flagged `low_n` (eval.verdict) are hollow and grey, and say so."""
    metrics = list(dict.fromkeys(m for c in comparisons.values() for m, v in c.items() if "win_rate" in v))
    rows = [(metric, name, comparison[metric]) for metric in metrics for name, comparison in comparisons.items()
            if "win_rate" in comparison.get(metric, {})]
    # One line per model and metric, a gap between metrics, the first metric at the top.
    y = -(np.arange(len(rows)) + 0.6 * np.array([metrics.index(metric) for metric, _, _ in rows]))
    figure, axis = plt.subplots(figsize=(8, 0.3 * (len(rows) + 0.6 * len(metrics)) + 1.2))
    colours = dict(zip(comparisons, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for row, (_, name, c) in zip(y, rows):
        low_n = c["low_n"]
        colour = "0.6" if low_n else colours[name]
        low, high = c["win_rate_ci"]
        axis.errorbar(c["win_rate"], row, xerr=[[c["win_rate"] - low], [high - c["win_rate"]]], fmt="o",
                      color=colour, markerfacecolor="white" if low_n else colour, capsize=3)
        axis.annotate(f"{c['win_rate']:.2f} [{low:.2f}, {high:.2f}] n={c['n']}" + (" — too few" if low_n else ""),
                      (1.02, row), xycoords=("axes fraction", "data"), va="center", fontsize=8, color=colour)
    axis.axvline(0.5, color="black", linewidth=1)
    axis.set_yticks(y, [f"{metric} · {name.removesuffix('_vs_reference')}" for metric, name, _ in rows])
    axis.set_ylim(y.min() - 0.7, 0.7)
    axis.set_xlim(-0.02, 1.02)  # whole markers at 0 and 1
    axis.set_xlabel("paired win rate over the reference (95% CI); right of 0.5 is better")
    axis.grid(axis="x", alpha=0.3)
    return _png(figure)


def training_curves(runs: dict[str, list[dict]]) -> bytes:
    """Loss, implicit accuracy and reward margin per step, from the trainers' metrics.jsonl."""
    panels = [("loss", "loss"), ("rewards/accuracies", "implicit accuracy"), ("rewards/margins", "reward margin")]
    figure, axes = plt.subplots(1, 3, figsize=(11, 3))
    for axis, (key, title) in zip(axes, panels):
        for name, rows in runs.items():
            points = [(r["step"], r[key]) for r in rows if key in r]
            if points:
                steps, values = zip(*points)
                raw, = axis.plot(steps, values, alpha=0.3)
                window = max(1, len(values) // 20)  # a moving average, in the raw curve's colour
                axis.plot(steps[window - 1:], np.convolve(values, np.ones(window) / window, "valid"),
                          color=raw.get_color(), label=name)
        axis.set_title(title)
        axis.set_xlabel("step")
    axes[0].legend()
    return _png(figure)


def auto_score_accuracy(rows: list[dict]) -> bytes:
    """How often each auto-score picks the human winner (0.5 is chance)."""
    rows = sorted(rows, key=lambda r: r["accuracy"])
    figure, axis = plt.subplots(figsize=(6, 0.35 * max(4, len(rows)) + 1))
    axis.barh([r["score"] for r in rows], [r["accuracy"] for r in rows])
    axis.axvline(0.5, color="black", linewidth=1)
    axis.set_xlim(0, 1)
    axis.set_xlabel("agreement with the human winner")
    return _png(figure)
