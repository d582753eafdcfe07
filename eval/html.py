"""report.html: one self-contained page (plots embedded as base64 PNG), readable without a server.

Reading order: the verdict (checks, then the win-rate forest plot), the samples side by side, the inputs,
then the details. Results flagged `low_n` are greyed and labelled wherever they appear.
"""

from __future__ import annotations

import base64
import html

from eval.verdict import LOW_N, WORDS

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222;
       line-height: 1.4; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.good { background: #e3f6e3; } .bad { background: #fbe4e4; }
tr.low-n td { background: #f2f2f2; color: #888; }
.low-n-label { display: inline-block; margin-left: 0.5em; padding: 0 0.35em; border: 1px solid #aaa;
               border-radius: 3px; font-size: 0.8em; color: #666; white-space: nowrap; }
.headline li { margin: 0.3em 0; }
.headline li:first-child { font-size: 1.15em; font-weight: 600; list-style: none; margin-left: -1.2em; }
img { max-width: 100%; }
.sync { margin: 0 0 1.5em; }
.sync-clips { display: grid; grid-template-columns: repeat(var(--models), minmax(0, 1fr)); gap: 0.5em; }
.sync figure { margin: 0; }
.sync video { width: 100%; display: block; background: #000; cursor: pointer; }
.sync figcaption { font-size: 0.85em; }
.sync-bar { display: flex; align-items: center; gap: 0.6em; margin-top: 0.3em; }
.sync-bar input { flex: 1; }
.sync-bar button { min-width: 5em; padding: 0.3em 0.6em; }
@media (max-width: 600px) { table { font-size: 0.8em; } th, td { padding: 0.2em 0.35em; } }
"""

# One play button and one seek bar drive every clip of a row; the first clip is the clock and the others are
# pulled back to it when they drift, so the models' mouths can be compared frame for frame. Only the clock
# plays sound: every clip carries the same driving audio.
SYNC_SCRIPT = """
document.querySelectorAll('.sync').forEach((row) => {
  const clips = Array.from(row.querySelectorAll('video'));
  const clock = clips[0];
  const button = row.querySelector('.sync-play');
  const seek = row.querySelector('.sync-seek');
  const time = row.querySelector('.sync-time');
  const seekAll = (t) => clips.forEach((v) => { v.currentTime = t; });
  // The clock starts first (its sound takes longest); the others join it once its time moves.
  const playAll = () => clock.play().catch(() => {});
  const toggle = () => {
    if (!clock.paused) { clips.forEach((v) => v.pause()); return; }
    if (clock.ended) seekAll(0);
    playAll();
  };
  clock.muted = false;
  button.addEventListener('click', toggle);
  clips.forEach((v) => v.addEventListener('click', toggle));
  seek.addEventListener('input', () => seekAll(seek.value * (clock.duration || 0)));
  clock.addEventListener('play', () => { button.textContent = '❚❚ pause'; });
  clock.addEventListener('playing', () => clips.slice(1).forEach((v) => {
    v.currentTime = clock.currentTime;
    v.play().catch(() => {});
  }));
  clock.addEventListener('pause', () => { button.textContent = '▶ play'; });
  clock.addEventListener('ended', () => { seekAll(0); playAll(); });  // loop, all together
  clock.addEventListener('timeupdate', () => {
    if (clock.duration) seek.value = clock.currentTime / clock.duration;
    time.textContent = clock.currentTime.toFixed(2) + ' s';
    clips.slice(1).forEach((v) => {
      if (Math.abs(v.currentTime - clock.currentTime) > 0.1) v.currentTime = clock.currentTime;
      if (v.paused !== clock.paused) (clock.paused ? v.pause() : v.play().catch(() => {}));
    });
  });
});
"""


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    return html.escape(str(value))


LOW_N_LABEL = (f"<span class='low-n-label' title='fewer than {LOW_N} samples: the CI is too rough to act on'>"
               f"n &lt; {LOW_N}</span>")


def _table(columns: list[str], rows: list[list], classes: list[str] | None = None) -> str:
    """A table that scrolls sideways on narrow screens; rows of class low-n get the low-n label."""
    classes = classes or [""] * len(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row, css in zip(rows, classes):
        cells = [_number(v) for v in row]
        if "low-n" in css.split():
            cells[0] += LOW_N_LABEL
        body.append(f"<tr class='{css}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<div class='scroll'><table><tr>{head}</tr>{''.join(body)}</table></div>"


def _image(images: dict[str, bytes], name: str, alt: str) -> str:
    if name not in images:
        return ""
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(images[name]).decode()}'>"


def _row_class(result: dict, ci: list | None = None, null: float = 0.0) -> str:
    """low-n when the result rests on too few samples; else good / bad when its CI lies above / below null."""
    if result.get("low_n"):
        return "low-n"
    if not ci:
        return ""
    return "good" if ci[0] > null else "bad" if ci[1] < null else ""


def _verdict(verdict: dict, images: dict[str, bytes]) -> str:
    parts = ["<h2>Verdict</h2><ul class='headline'>"
             + "".join(f"<li>{html.escape(line)}</li>" for line in verdict["headline"]) + "</ul>"]
    checks = verdict["checks"]
    for group in dict.fromkeys(c["group"] for c in checks):
        members = [c for c in checks if c["group"] == group]
        _, worse, unclear = WORDS[members[0]["null"]]
        parts.append(f"<h3>{html.escape(group[0].upper() + group[1:])}</h3>")
        parts.append(_table(
            ["check", "n", "accuracy" if members[0]["null"] == 0.5 else "improvement", "95% CI", "result"],
            [[c["name"], c["n"], c["value"], c["ci"],
              "pass" if c["passed"] else f"fail ({worse if c['worse'] else unclear})"] for c in members],
            [_row_class(c, c["ci"], c["null"]) for c in members]))
    if "win_rates" in images:
        parts.append("<h3>Win rates over the reference</h3><p>Share of paired samples (same condition and seed) "
                     "where the model scores better than the reference, ties half; right of 0.5 is better. "
                     f"Hollow grey points rest on fewer than {LOW_N} samples.</p>")
        parts.append(_image(images, "win_rates", "forest plot of paired win rates with 95% CIs"))
    return "\n".join(parts)


def _comparison_rows(comparison: dict) -> tuple[list[list], list[str]]:
    rows, classes = [], []
    for metric, c in comparison.items():
        rows.append([metric, c.get("n"), c.get("policy_mean"), c.get("reference_mean"),
                     c.get("improvement", c.get("difference")),
                     c.get("improvement_ci"), c.get("win_rate"), c.get("win_rate_ci")])
        classes.append(_row_class(c, c.get("improvement_ci")))
    return rows, classes


SAMPLE_ROWS = 4  # held-out (condition, seed) rows of videos shown side by side
CAPTION = ("sync/lse_c", "identity/csim")


def _samples(rows: list[dict]) -> str:
    """Videos of the same condition and seed from every model side by side, one synced player per row
    (files stay in samples/)."""
    by_key: dict[tuple, dict[str, dict]] = {}
    for row in rows:
        by_key.setdefault((row["condition_id"], row["seed"]), {})[row["model"]] = row
    models = list(dict.fromkeys(r["model"] for r in rows))
    out = []
    # Lowest seeds first, so the rows shown span conditions before they repeat one.
    for (condition, seed), cells in sorted(by_key.items(), key=lambda item: (item[0][1], item[0][0]))[:SAMPLE_ROWS]:
        out.append(f"<div class='sync'><div>condition {html.escape(condition)}, seed {seed}</div>"
                   f"<div class='sync-clips' style='--models: {len(models)}'>")
        for model in models:
            row = cells.get(model, {})
            caption = ", ".join(f"{k.split('/')[1]} {_number(row.get(k))}" for k in CAPTION if k in row)
            out.append(f"<figure><video src='{html.escape(row.get('video', ''))}' muted playsinline preload='auto' "
                       "controlsList='nodownload' disablePictureInPicture></video>"
                       f"<figcaption><b>{html.escape(model)}</b> {caption}</figcaption></figure>")
        out.append("</div><div class='sync-bar'><button type='button' class='sync-play'>▶ play</button>"
                   "<input type='range' class='sync-seek' min='0' max='1' step='0.001' value='0' "
                   "aria-label='position in the clips'><span class='sync-time'>0.00 s</span></div></div>")
    return "".join(out)


def _training(training: dict[str, dict | None]) -> str:
    """Steps and the last tenth's mean of each logged value: one row per value, one column per run."""
    keys = list(dict.fromkeys(k for summary in training.values() if summary for k in summary))
    return _table(["value (mean of the last tenth of steps)", *training],
                  [[k, *((summary or {}).get(k) for summary in training.values())] for k in keys])


def render(metrics: dict, images: dict[str, bytes], samples: list[dict]) -> str:
    """The whole page; `samples` are the generation rows (model, condition_id, seed, video, scores)."""
    inputs = metrics["inputs"]
    compared = ", ".join(f"{name} {html.escape(str(inputs[name]))}" for name in ("policy", "reference", "sft")
                         if inputs.get(name))
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>portrait-dpo evaluation</title><style>{STYLE}</style></head><body>"
             f"<h1>portrait-dpo evaluation</h1><p>{compared}; held-out data {html.escape(str(inputs['dataset']))}."
             "</p>"]
    parts.append(_verdict(metrics["verdict"], images))
    if samples:
        parts.append("<h2>Samples</h2><p>The same held-out condition and seed from every model, played together: "
                     "the button, the bar or a click on a clip drives the whole row.</p>" + _samples(samples))

    parts.append("<h2>Inputs</h2>")
    parts.append(_table(["input", "value"], [[k, v] for k, v in inputs.items() if v is not None]))

    parts.append("<h2>Implicit reward on held-out pairs</h2><p>Share of held-out human pairs where the model, "
                 "relative to the reference, gives the winner the lower denoising error (a positive DPO margin).</p>")
    implicit = metrics["implicit_reward"]
    parts.append(_table(["model", "pairs", "accuracy", "95% CI", "mean margin"],
                        [[name, r["pairs"], r["accuracy"], r["accuracy_ci"], r["mean_margin"]]
                         for name, r in implicit.items()],
                        [_row_class(r, r["accuracy_ci"], 0.5) for r in implicit.values()]))
    for name, r in implicit.items():
        parts.append(f"<h3>{html.escape(name)} per criterion</h3>")
        per = r["per_criterion"]
        parts.append(_table(["criterion", "pairs", "accuracy", "95% CI"],
                            [[c, v["pairs"], v["accuracy"], v["accuracy_ci"]] for c, v in per.items()],
                            [_row_class(v, v["accuracy_ci"], 0.5) for v in per.values()]))
    parts.append(_image(images, "margins", "implicit reward margins"))

    generation = metrics["generation"]
    parts.append(f"<h2>Generation on held-out conditions</h2><p>{generation['conditions']} conditions × "
                 f"{generation['samples_per_condition']} seeds per model, the same seeds for every model. "
                 "Improvement is signed so that &gt; 0 is better; green: its 95% CI is above zero, red: below; "
                 f"grey: fewer than {LOW_N} samples. "
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

    parts.append("<h2>Auto-scores vs humans</h2>")
    dataset = metrics["auto_scores"]["dataset"]
    parts.append(_table(["score", "pairs", "accuracy", "AUC"],
                        [[r["score"], r["pairs"], r["accuracy"], r["auc"]] for r in dataset],
                        [_row_class(r) for r in dataset]))
    parts.append(_image(images, "auto_scores", "auto-score agreement with humans"))
    if metrics["annotators"]:
        parts.append("<h3>Annotator agreement (Krippendorff's α)</h3>")
        parts.append(_table(["criterion", "alpha"], [[k, v] for k, v in metrics["annotators"]["alpha"].items()]))

    parts.append("<h2>Training</h2>")
    parts.append(_training(metrics["training"]))
    parts.append(_image(images, "training", "training curves"))
    parts.append(f"<script>{SYNC_SCRIPT}</script></body></html>")
    return "\n".join(parts)
