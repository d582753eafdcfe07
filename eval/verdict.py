"""The report's headline: which success criteria the policy passed, by how much, and which results rest on
too few samples to act on.

A check passes when its 95% CI lies wholly on the good side: held-out implicit-reward accuracy above 0.5
(chance), an improvement over the reference or over SFT above 0. A result from fewer than LOW_N samples
keeps its numbers but is flagged `low_n`: a bootstrap CI of a handful of values is too narrow to trust
(one sample gives a zero-width interval).
"""

from __future__ import annotations

from typing import Any

LOW_N = 10
# Comparisons the verdict judges the policy by; SFT's own results stay in the report's details.
VERDICT_COMPARISONS = {"policy_vs_reference": "policy vs reference", "policy_vs_sft": "policy vs SFT"}


def flag_low_n(value: Any) -> Any:
    """A copy of the metrics in which every result with a sample count — `n` (paired samples) or `pairs`
    (held-out or scored pairs) — carries `low_n`: true when the count is below LOW_N."""
    if isinstance(value, list):
        return [flag_low_n(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: flag_low_n(v) for k, v in value.items()}
    count = value.get("n", value.get("pairs"))
    if isinstance(count, int) and not isinstance(count, bool):
        out["low_n"] = count < LOW_N
    return out


def _check(group: str, name: str, n: int, value: float, ci: list[float], null: float) -> dict:
    return {"group": group, "name": name, "n": n, "value": value, "ci": ci, "null": null,
            "passed": ci[0] > null, "worse": ci[1] < null, "low_n": n < LOW_N}


def checks(metrics: dict) -> list[dict]:
    """Every check of the policy, in reading order: implicit reward (overall, then per criterion when there
    are several), then each metric with a better direction against the reference and against SFT."""
    out = []
    implicit = metrics["implicit_reward"].get("policy")
    if implicit:
        group = "held-out pairs where the policy prefers the human winner"
        out.append(_check(group, "all criteria", implicit["pairs"], implicit["accuracy"], implicit["accuracy_ci"],
                          0.5))
        if len(implicit["per_criterion"]) > 1:  # with one criterion its row would repeat the overall one
            out += [_check(group, criterion, r["pairs"], r["accuracy"], r["accuracy_ci"], 0.5)
                    for criterion, r in implicit["per_criterion"].items()]
    for key, group in VERDICT_COMPARISONS.items():
        for metric, c in metrics["generation"]["comparisons"].get(key, {}).items():
            if "improvement_ci" in c:  # undirected or unmeasured metrics have nothing to pass
                out.append(_check(group, metric, c["n"], c["improvement"], c["improvement_ci"], 0.0))
    return out


def _result(check: dict, with_n: bool) -> str:
    signed = "+.3g" if check["null"] == 0 else ".3f"
    low, high = check["ci"]
    notes = ([f"n={check['n']}"] if with_n else []) + (["too few"] if check["low_n"] else [])
    return (f"{check['name']} {check['value']:{signed}} [{low:{signed}}, {high:{signed}}]"
            + (f" ({', '.join(notes)})" if notes else ""))


# What a check's three outcomes are called, by its null value (accuracy against chance, improvement against 0).
WORDS = {0.5: ("above chance", "below chance", "not clearly above chance"),
         0.0: ("better", "worse", "no clear change")}


def headline(found: list[dict]) -> list[str]:
    """A few sentences: how many checks pass, then per group what passed, what got worse and what is unclear."""
    if not found:
        return ["No checks: no held-out implicit reward and no scored metric with a better direction."]
    passed = sum(c["passed"] for c in found)
    few = sum(c["low_n"] for c in found)
    lines = [f"{passed} of {len(found)} checks pass (95% CI wholly on the good side)"
             + (f"; {few} rest on fewer than {LOW_N} samples." if few else ".")]
    for group in dict.fromkeys(c["group"] for c in found):
        members = [c for c in found if c["group"] == group]
        counts = {c["n"] for c in members}  # said once for the group when every check has the same n
        better, worse, unclear = WORDS[members[0]["null"]]
        parts = [f"{label}: " + "; ".join(_result(c, len(counts) > 1) for c in chosen)
                 for label, chosen in ((better, [c for c in members if c["passed"]]),
                                       (worse, [c for c in members if c["worse"]]))
                 if chosen]
        unsure = [c["name"] + (f" (n={c['n']}, too few)" if c["low_n"] else "")
                  for c in members if not c["passed"] and not c["worse"]]
        if unsure:
            parts.append(f"{unclear}: " + ", ".join(unsure))
        label = group[0].upper() + group[1:] + (f" (n={counts.pop()} each)" if len(counts) == 1 else "")
        lines.append(f"{label} — " + " · ".join(parts) + ".")
    return lines


def verdict(metrics: dict) -> dict:
    """The `verdict` section of metrics.json: the low-n threshold, the headline sentences and every check."""
    found = checks(metrics)
    return {"low_n_below": LOW_N, "headline": headline(found), "checks": found}
