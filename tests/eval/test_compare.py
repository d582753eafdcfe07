import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_schemas import UserError
from eval.compare import flatten, load_metrics, side_by_side


def test_flatten_keeps_numbers_only():
    assert flatten({"a": {"b": 1, "c": "text", "d": True}, "e": 2.5, "f": [1, 2]}) == {"a/b": 1.0, "e": 2.5}


def test_side_by_side_aligns_and_subtracts():
    rows = side_by_side({"x": 1.0, "y": 2.0}, {"y": 3.5, "z": 4.0})
    assert rows == [("x", 1.0, None, None), ("y", 2.0, 3.5, 1.5), ("z", None, 4.0, None)]


def test_missing_and_broken_metrics_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no metrics.json"):
        load_metrics(tmp_path)
    (tmp_path / "metrics.json").write_text("{oops")
    with pytest.raises(UserError, match="not valid JSON"):
        load_metrics(tmp_path)
    (tmp_path / "metrics.json").write_bytes(b"\xff\xfe")
    with pytest.raises(UserError, match="not text"):
        load_metrics(tmp_path)
    for other in ("[1, 2]", "{}", '{"heldout": "x"}'):  # JSON, but not a report's
        (tmp_path / "metrics.json").write_text(other)
        with pytest.raises(UserError, match="not the metrics.json of `evaluate report`"):
            load_metrics(tmp_path)


def test_compare_cli(tmp_path):
    for name, value in (("a", 0.5), ("b", 0.75)):
        (tmp_path / name).mkdir()
        metrics = {"schema": 1, "heldout": {"implicit_accuracy": value}}
        (tmp_path / name / "metrics.json").write_text(json.dumps(metrics))
    result = subprocess.run([str(Path(sys.executable).parent / "evaluate"), "compare", str(tmp_path / "a"),
                             str(tmp_path / "b")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "heldout/implicit_accuracy" in result.stdout and "+0.25" in result.stdout
