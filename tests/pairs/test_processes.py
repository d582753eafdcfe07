"""`pairs generate|score` under `accelerate launch`: 2 CPU processes give what one gives, once, and resume."""

import os
import socket
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from campaign.shards import write_part
from campaign.store import Campaign
from data_schemas import Clip, Condition, Score, from_table
from media_io.hashing import sha256_file
from pairs.candidates.ingest import ingest_rows
from pairs.candidates.manifest import read_manifest
from pairs.cli import app

SCORERS = "sync,expression,motion"


def launch_two(*args: str) -> subprocess.CompletedProcess:
    """`accelerate launch` 2 CPU processes of `pairs` (accelerate's --cpu alone would start one)."""
    with socket.socket() as probe:  # a free port: other test runs on this machine may launch too
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return subprocess.run(
        [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--main_process_port", str(port), "--mixed_precision", "no", "--dynamo_backend",
         "no", "-m", "pairs.cli", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, "ACCELERATE_USE_CPU": "true", "COLUMNS": "200"})


def in_process(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def clips(campaign: Path) -> dict[str, tuple]:
    """sha256 → (condition, generator, seed, params, sha256 of the media file's bytes)."""
    store = Campaign.open(campaign)
    return {c.sha256: (c.condition_id, c.generator, c.seed, c.params, sha256_file(store.media_file(c.media_path)))
            for c in from_table(store.table("clips"), Clip)}


def scores(campaign: Path) -> list[tuple]:
    return sorted((s.clip, s.scorer, s.scorer_version, s.metric, s.value, s.reason, str(s.details))
                  for s in from_table(Campaign.open(campaign).table("scores"), Score))


def world_campaign(manifest: Path, folder: Path) -> Campaign:
    campaign = Campaign.open(folder, create=True)
    ingest_rows(campaign, read_manifest(manifest)[0], progress=False)
    return campaign


def test_two_processes_generate_and_score_what_one_process_does(tiny_model_dir, tiny_world, tmp_path):
    generate = ["--conditions", "3", "--candidates", "2", "--guidance", "1.5,3", "--model", str(tiny_model_dir),
                "--steps", "1", "--seconds", "0.4"]
    in_process("generate", "--campaign", str(tmp_path / "one"), *generate)
    result = launch_two("generate", "--campaign", str(tmp_path / "two"), *generate)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("generate → ") == 1  # one process reports
    one = clips(tmp_path / "one")
    assert len(one) == 6 and clips(tmp_path / "two") == one  # same clips, same bytes
    assert all(sha == media for sha, (*_, media) in one.items())
    assert Campaign.open(tmp_path / "two").table("conditions").num_rows == 3
    again = in_process("generate", "--campaign", str(tmp_path / "two"), *generate)
    assert "│    6 │        0 │               6 │       0 │" in again  # all already present: nothing sampled
    assert clips(tmp_path / "two") == one

    single = world_campaign(tiny_world, tmp_path / "scored-one").root
    in_process("score", "--campaign", str(single), "--scorers", SCORERS)
    sharded = world_campaign(tiny_world, tmp_path / "scored-two").root
    result = launch_two("score", "--campaign", str(sharded), "--scorers", SCORERS)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "scored: {'sync': 8, 'expression': 8, 'motion': 8}; already scored: 0 clips" in result.stdout
    assert len(scores(sharded)) == 8 * 11 and scores(sharded) == scores(single)  # 4 + 4 + 3 metrics once each
    again = in_process("score", "--campaign", str(sharded), "--scorers", SCORERS)
    assert "scored: {'sync': 0, 'expression': 0, 'motion': 0}; already scored: 8 clips" in again
    assert not [p for p in (sharded / "shards").rglob("*") if p.is_file()]  # every part merged and removed


def test_parts_left_by_a_killed_process_are_merged_and_not_redone(tiny_model_dir, tiny_world, tmp_path):
    from pairs.scoring.score import score_campaign
    from pairs.scoring.scorers import ScorerOptions, load_scorers

    generate = ["--conditions", "2", "--candidates", "1", "--model", str(tiny_model_dir), "--steps", "1",
                "--seconds", "0.4"]
    in_process("generate", "--campaign", str(tmp_path / "whole"), *generate)
    whole = Campaign.open(tmp_path / "whole")
    killed = Campaign.open(tmp_path / "killed", create=True)  # rank 1 finished one condition, then died
    first = from_table(whole.table("conditions"), Condition)[0]
    write_part(killed, "generate", 1, {"conditions": [first], "clips": [
        c for c in from_table(whole.table("clips"), Clip) if c.condition_id == first.condition_id]})
    for path in (whole.root / "media").rglob("*.*"):  # its media were copied in before its part was written
        (killed.root / path.relative_to(whole.root)).parent.mkdir(parents=True, exist_ok=True)
        (killed.root / path.relative_to(whole.root)).write_bytes(path.read_bytes())
    (killed.root / "shards" / "generate" / "rank-1" / ".tmp-torn").mkdir()  # killed while writing its next part
    resumed = in_process("generate", "--campaign", str(killed.root), *generate)
    assert "│    2 │        1 │               1 │       0 │" in resumed  # one made, one taken from the part
    assert clips(killed.root) == clips(whole.root)

    campaign = world_campaign(tiny_world, tmp_path / "scores")
    motion, _ = load_scorers(ScorerOptions(scorers=("motion",)))
    reference = world_campaign(tiny_world, tmp_path / "reference")
    score_campaign(reference, motion, progress=False)
    first_clips = sorted({s.clip for s in from_table(reference.table("scores"), Score)})[:3]
    write_part(campaign, "score", 1, {"scores": [  # a part holds whole clips: 3 of the 8
        s for s in from_table(reference.table("scores"), Score) if s.clip in first_clips]})
    run = score_campaign(campaign, motion, progress=False)
    assert run.cached == 3 and run.scored == {"motion": 5}
    assert scores(campaign.root) == scores(reference.root)


def test_cuda_without_a_gpu_is_refused_not_run_on_the_cpu():
    import pytest
    import torch

    from data_schemas import UserError
    from pairs.processes import process_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert process_device("cpu") == "cpu"
    with pytest.raises(UserError, match="--device cuda: this process sees no CUDA GPU"):
        process_device("cuda")
