"""report.html: one self-contained page (plots embedded as base64 PNG), readable without a server."""

from __future__ import annotations

import base64
import html
import json

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.good { background: #e3f6e3; } .bad { background: #fbe4e4; }
img { max-width: 100%; }
"""


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    return html.escape(str(value))


def _table(columns: list[str], rows: list[list], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(f"<tr class='{(classes or [''] * len(rows))[i]}'>" + "".join(f"<td>{_number(v)}</td>" for v in row)
                   + "</tr>" for i, row in enumerate(rows))
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(images: dict[str, bytes], name: str, alt: str) -> str:
    if name not in images:
        return ""
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(images[name]).decode()}'>"


def _comparison_rows(comparison: dict) -> tuple[list[list], list[str]]:
    rows, classes = [], []
    for metric, c in comparison.items():
        rows.append([metric, c.get("n"), c.get("policy_mean"), c.get("reference_mean"),
                     c.get("improvement", c.get("difference")),
                     c.get("improvement_ci"), c.get("win_rate"), c.get("win_rate_ci")])
        low = (c.get("improvement_ci") or [None])[0]
        high = (c.get("improvement_ci") or [None, None])[1]
        classes.append("good" if low is not None and low > 0 else "bad" if high is not None and high < 0 else "")
    return rows, classes


SAMPLE_ROWS = 4  # held-out (condition, seed) rows of videos shown side by side
CAPTION = ("sync/lse_c", "identity/csim")


def _samples(rows: list[dict]) -> str:
    """Videos of the same condition and seed from every model side by side (files stay in samples/)."""
    by_key: dict[tuple, dict[str, dict]] = {}
    for row in rows:
        by_key.setdefault((row["condition_id"], row["seed"]), {})[row["model"]] = row
    models = list(dict.fromkeys(r["model"] for r in rows))
    out = ["<table><tr><th>condition, seed</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in models) + "</tr>"]
    # Lowest seeds first, so the rows shown span conditions before they repeat one.
    for (condition, seed), cells in sorted(by_key.items(), key=lambda item: (item[0][1], item[0][0]))[:SAMPLE_ROWS]:
        out.append(f"<tr><td>{html.escape(condition)}, {seed}</td>")
        for model in models:
            row = cells.get(model, {})
            caption = ", ".join(f"{k.split('/')[1]} {_number(row.get(k))}" for k in CAPTION if k in row)
            out.append(f"<td><video src='{html.escape(row.get('video', ''))}' controls loop muted preload='auto' "
                       "width='160'>"
                       f"</video><br>{caption}</td>")
        out.append("</tr>")
    return "".join(out) + "</table>"


def render(metrics: dict, images: dict[str, bytes], samples: list[dict]) -> str:
    """The whole page; `samples` are the generation rows (model, condition_id, seed, video, scores)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>portrait-dpo evaluation</title>"
             f"<style>{STYLE}</style></head><body><h1>portrait-dpo evaluation</h1>"]
    inputs = metrics["inputs"]
    parts.append(_table(["input", "value"], [[k, v] for k, v in inputs.items() if v is not None]))

    parts.append("<h2>Implicit reward on held-out pairs</h2><p>Share of held-out human pairs where the model, "
                 "relative to the reference, gives the winner the lower denoising error (a positive DPO margin).</p>")
    rows = [[name, r["pairs"], r["accuracy"], r["accuracy_ci"], r["mean_margin"]]
            for name, r in metrics["implicit_reward"].items()]
    parts.append(_table(["model", "pairs", "accuracy", "95% CI", "mean margin"], rows))
    for name, r in metrics["implicit_reward"].items():
        parts.append(f"<h3>{html.escape(name)} per criterion</h3>")
        parts.append(_table(["criterion", "pairs", "accuracy"],
                            [[c, v["pairs"], v["accuracy"]] for c, v in r["per_criterion"].items()]))
    parts.append(_image(images, "margins", "implicit reward margins"))

    generation = metrics["generation"]
    parts.append(f"<h2>Generation on held-out conditions</h2><p>{generation['conditions']} conditions × "
                 f"{generation['samples_per_condition']} seeds per model, the same seeds for every model. "
                 "Improvement is signed so that &gt; 0 is better; green: its 95% CI is above zero, red: below. "
                 "Metrics without a better direction show the plain difference, without CI or win rate.</p>")
    if generation["unavailable_scorers"]:
        parts.append("<p>Not scored: " + "; ".join(f"{html.escape(k)}: {html.escape(v)}"
                                                   for k, v in generation["unavailable_scorers"].items()) + "</p>")
    for name, comparison in generation["comparisons"].items():
        a, b = name.split("_vs_")
        rows, classes = _comparison_rows(comparison)
        parts.append(f"<h3>{html.escape(a)} vs {html.escape(b)}</h3>")
        parts.append(_table(["metric", "n", f"{a} mean", f"{b} mean", "improvement (difference)", "95% CI", "win rate",
                             "95% CI"],
                            rows, classes))
    parts.append(_image(images, "win_rates", "paired win rates"))
    if samples:
        parts.append("<h3>Samples (same condition and seed per row)</h3>" + _samples(samples))

    parts.append("<h2>Auto-scores vs humans</h2>")
    parts.append(_table(["score", "pairs", "accuracy", "AUC"],
                        [[r["score"], r["pairs"], r["accuracy"], r["auc"]] for r in metrics["auto_scores"]["dataset"]]))
    parts.append(_image(images, "auto_scores", "auto-score agreement with humans"))
    if metrics["annotators"]:
        parts.append("<h3>Annotator agreement (Krippendorff's α)</h3>")
        parts.append(_table(["criterion", "alpha"], [[k, v] for k, v in metrics["annotators"]["alpha"].items()]))

    parts.append("<h2>Training</h2>")
    parts.append(_table(["run", "summary of the last tenth of steps"],
                        [[k, json.dumps(v)] for k, v in metrics["training"].items()]))
    parts.append(_image(images, "training", "training curves"))
    parts.append("</body></html>")
    return "\n".join(parts)
