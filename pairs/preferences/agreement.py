"""Inter-annotator agreement: Krippendorff's α over A/B votes (nominal), through the `krippendorff` package."""

from __future__ import annotations

import krippendorff
import numpy as np
import pyarrow as pa

CHOICE_CODES = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}


def reliability_matrix(units: list, annotators: list, values: list) -> np.ndarray:
    """Annotator × unit matrix of codes, NaN where an annotator did not judge a unit."""
    unit_index = {u: i for i, u in enumerate(dict.fromkeys(units))}
    annotator_index = {a: i for i, a in enumerate(dict.fromkeys(annotators))}
    matrix = np.full((len(annotator_index), len(unit_index)), np.nan)
    for unit, annotator, value in zip(units, annotators, values):
        matrix[annotator_index[annotator], unit_index[unit]] = value
    return matrix


def vote_alpha(votes: pa.Table, criterion: str) -> float | None:
    """α of one criterion's A/B votes (skips left out); None when no item has two answers."""
    rows = [r for r in votes.select(["clip_a", "clip_b", "annotator", "criterion", "choice"]).to_pylist()
            if r["criterion"] == criterion and r["choice"] in CHOICE_CODES]
    return _alpha([(r["clip_a"], r["clip_b"]) for r in rows], [r["annotator"] for r in rows],
                  [CHOICE_CODES[r["choice"]] for r in rows], "nominal")


def _alpha(units: list, annotators: list, values: list, level: str) -> float | None:
    matrix = reliability_matrix(units, annotators, values)
    pairable = (~np.isnan(matrix)).sum(axis=0) >= 2
    if not pairable.any() or len(np.unique(matrix[:, pairable][~np.isnan(matrix[:, pairable])])) < 2:
        return None  # α is undefined without overlap or without any variation
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))
