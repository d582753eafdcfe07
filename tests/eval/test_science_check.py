"""The science check's wiring (which signal the annotators follow, which one judges, the reverse run), with
every pipeline command replaced by a recorder: the real check takes many minutes."""

import json
from pathlib import Path

import pytest

from eval import science_check


IMPROVEMENTS = {"sync/lse_c": 0.3, "expression/mouth_audio": -0.05, "sync/lse_d": 0.0}


def fake_metrics(improvements: dict[str, float]) -> dict:
    comparison = {m: {"improvement": v, "improvement_ci": [v - 0.1, v + 0.1]} for m, v in improvements.items()}
    comparison["sync/offset"] = {}  # no better direction: compared by nobody
    return {"implicit_reward": {"policy": {"accuracy": 0.8, "accuracy_ci": [0.6, 0.95]}},
            "generation": {"comparisons": {"policy_vs_reference": comparison, "policy_vs_sft": comparison},
                           "means": {"policy": dict.fromkeys(improvements, 1.0)}}}


@pytest.fixture
def commands(monkeypatch):
    """Record every command; `pairs generate` makes the campaign folder, `evaluate report` writes metrics in
    which the policy improves sync/lse_c but not expression/mouth_audio (its CI straddles zero) and keeps
    sync/lse_d (a test may change IMPROVEMENTS)."""
    seen = []

    def run(*command: str) -> None:
        seen.append(command)
        where = Path(command[command.index("--out" if "--out" in command else "--campaign") + 1])
        if command[:2] == ("pairs", "generate"):
            where.mkdir(parents=True)
        if command[:2] == ("evaluate", "report"):
            where.mkdir(parents=True)
            metrics = fake_metrics(IMPROVEMENTS)
            (where / "metrics.json").write_text(json.dumps(metrics))
    monkeypatch.setattr(science_check, "_run", run)
    return seen


def simulated_signal(command: tuple[str, ...]) -> str:
    return command[command.index("--simulate-score") + 1]


def test_annotators_prefer_one_signal_the_judge_uses_another_and_the_reverse_runs_too(commands, tmp_path, capsys):
    assert science_check.main(["--out", str(tmp_path / "science")]) == 1  # the reverse run fails its judge
    serves = [c for c in commands if c[:2] == ("annotate", "serve")]
    assert [simulated_signal(c) for c in serves] == ["expression/mouth_audio", "sync/lse_c"]
    assert all(c[c.index("--assign") + 1] == "round-robin" for c in serves)
    scored = next(c for c in commands if c[:2] == ("pairs", "score"))
    assert scored[scored.index("--scorers") + 1] == "expression,sync"
    reports = [c for c in commands if c[:2] == ("evaluate", "report")]
    assert len(reports) == 2 and len({c[c.index("--out") + 1] for c in reports}) == 2  # a folder per run
    out = capsys.readouterr().out
    first, second = out.split("annotators prefer ")[1:3]
    assert first.startswith("expression/mouth_audio, judged by sync/lse_c") and "FAIL" not in first
    assert second.startswith("sync/lse_c, judged by expression/mouth_audio") and "FAIL" in second


def test_one_way_and_the_assignment_are_passed_on(commands, tmp_path):
    assert science_check.main(["--out", str(tmp_path / "s"), "--annotators-prefer", "expression/mouth_audio",
                               "--judge", "sync/lse_c", "--one-way", "--assign", "active"]) == 0
    serves = [c for c in commands if c[:2] == ("annotate", "serve")]
    assert len(serves) == 1 and serves[0][serves[0].index("--assign") + 1] == "active"


@pytest.mark.parametrize("flags, message", [
    (["--judge", "expression/mouth_audio"], "would grade itself"),
    (["--annotators-prefer", "sync/lse_d", "--one-way"], "higher-is-better"),
    (["--judge", "sync/offset", "--one-way"], "no better direction"),
])
def test_signals_that_cannot_check_anything_are_refused(commands, tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stopped:
        science_check.main(["--out", str(tmp_path / "s"), *flags])
    assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert commands == []  # refused before anything ran


def test_dense_has_the_annotators_mark_and_dpo_weigh_frames_by_the_marks(commands, tmp_path):
    science_check.main(["--out", str(tmp_path / "science"), "--dense", "--one-way", "--annotators-prefer",
                        "sync/lse_c", "--judge", "expression/mouth_audio"])
    serve = next(c for c in commands if c[:2] == ("annotate", "serve"))
    trained = {c[1]: c for c in commands if c[0] == "train"}
    assert "--simulate-marks" in serve and "--dense" in trained["dpo"] and "--dense" not in trained["sft"]


@pytest.mark.parametrize("arguments", [[], ["--annotators-prefer", "sync/lse_c", "--judge", "expression/mouth_audio"]])
def test_dense_is_refused_unless_every_run_follows_sync(commands, arguments, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:  # the default, and the reverse run, prefer the landmark signal
        science_check.main(["--out", str(tmp_path / "science"), "--dense", *arguments])
    assert exited.value.code == 2 and "--dense: the scripted marks come from SyncNet" in capsys.readouterr().err
    assert commands == []


def test_a_policy_that_games_the_judge_fails_on_another_lip_sync_measure(commands, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(IMPROVEMENTS, "sync/lse_d", -0.6)  # LSE-C up, LSE-D down: SyncNet fooled, not sync
    assert science_check.main(["--out", str(tmp_path / "s"), "--annotators-prefer", "expression/mouth_audio",
                               "--judge", "sync/lse_c", "--one-way"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("policy − reference sync/lse_d not < 0") and line.endswith("FAIL") for line in lines)
    assert any(line.startswith("policy − reference sync/lse_c > 0") and line.endswith("pass") for line in lines)
