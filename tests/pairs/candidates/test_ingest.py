import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from campaign.store import Campaign
from pairs.candidates.ingest import ingest_rows
from pairs.candidates.manifest import read_manifest
from media_io.codecs import write_video

FIELDS = ["condition_id", "clip", "reference_image", "audio", "pose", "generator", "seed", "params"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "pairs"), *args], capture_output=True, text=True,
                          timeout=300)


def world_rows(manifest: Path) -> list[dict]:
    return [{k: r[k] for k in FIELDS} for r in csv.DictReader(open(manifest))]


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def zero_frame_video(path: Path) -> None:
    """A Matroska file that declares a video track but holds only sound."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        sound = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(sound.encode(frame))
        container.mux(sound.encode(None))


@pytest.fixture
def bad_manifest(world_copy):
    """The world's good rows for one condition, then one row for every kind of problem."""
    folder = world_copy.parent
    rows = world_rows(world_copy)
    c0 = [r for r in rows if r["condition_id"] == rows[0]["condition_id"]]
    c1 = [r for r in rows if r["condition_id"] != rows[0]["condition_id"]]
    audio = np.zeros(16000, np.float32)
    data = (folder / c0[0]["clip"]).read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (folder / "text.mp4").write_text("this is not a video\n")
    zero_frame_video(folder / "empty.mkv")
    write_video(folder / "silent.mp4", np.zeros((25, 64, 64, 3), np.uint8), 25.0)
    write_video(folder / "fps30.mp4", np.zeros((30, 64, 64, 3), np.uint8), 30.0, audio)
    write_video(folder / "small.mp4", np.zeros((25, 48, 48, 3), np.uint8), 25.0, audio)
    write_video(folder / "my clip.mp4", np.full((25, 64, 64, 3), 9, np.uint8), 25.0, audio)
    shutil.copy(folder / c1[0]["reference_image"], folder / "other_ref.png")
    write_video(folder / "fresh.mp4", np.full((25, 64, 64, 3), 200, np.uint8), 25.0, audio)
    bad = {
        "missing": dict(c0[0], clip="nope.mp4"),
        "truncated": dict(c0[0], clip="truncated.mp4"),
        "text": dict(c0[0], clip="text.mp4"),
        "empty": dict(c0[0], clip="empty.mkv"),
        "silent": dict(c0[0], clip="silent.mp4"),
        "fps": dict(c0[0], clip="fps30.mp4"),
        "size": dict(c0[0], clip="small.mp4"),
        "duplicate": dict(c0[1]),
        "spaces": dict(c0[0], clip="my clip.mp4"),
        "condition": dict(c0[0], clip="fresh.mp4", reference_image="other_ref.png"),
        "params": dict(c0[0], clip="fresh.mp4", params="{not json"),
        "missing_audio": dict(c0[0], clip="fresh.mp4", audio="gone.wav"),
    }
    path = write_csv(folder / "mixed.csv", c0 + list(bad.values()))
    with open(path, "ab") as f:  # a row whose file name is not UTF-8
        f.write(c0[0]["condition_id"].encode() + b",caf\xe9.mp4,x.png,x.wav,,world,1,{}\n")
    return path, len(c0), list(bad)


def test_each_bad_row_gets_its_own_reason_and_good_rows_land(bad_manifest, tmp_path):
    manifest, good, kinds = bad_manifest
    rows, problems = read_manifest(manifest)
    campaign = Campaign.open(tmp_path / "campaign", create=True)
    report = ingest_rows(campaign, rows, progress=False)
    reasons = {p.line: p for p in problems + report.problems}
    assert report.ingested == good and report.unchanged == 0
    assert len(reasons) == len(kinds) + 1
    first_bad = 2 + good
    expected = {
        "missing": "clip file not found",
        "truncated": "truncated",
        "text": "not a readable media file",
        "empty": "0 frames",
        "silent": "no audio track",
        "fps": "30 fps 64x64 differs from the 25 fps 64x64",
        "size": "25 fps 48x48 differs",
        "duplicate": "duplicate clip: same content as line 3",
        "spaces": "path contains spaces",
        "condition": "already has a different reference image",
        "params": "params is not valid JSON",
        "missing_audio": "audio file not found",
    }
    for offset, kind in enumerate(kinds):
        assert expected[kind] in reasons[first_bad + offset].reason, (kind, reasons[first_bad + offset])
    assert "not valid UTF-8" in reasons[first_bad + len(kinds)].reason
    assert campaign.table("clips").num_rows == good
    assert campaign.table("conditions").num_rows == 1


def test_reingest_adds_nothing_and_failed_rows_change_nothing(bad_manifest, tmp_path):
    manifest, good, _ = bad_manifest
    campaign_dir = tmp_path / "campaign"
    first = cli("ingest", str(manifest), "--campaign", str(campaign_dir))
    assert first.returncode == 1
    before = {p.name: p.read_bytes() for p in (campaign_dir / "tables").glob("*.parquet")}
    media_before = sorted(p.name for p in (campaign_dir / "media").rglob("*"))
    second = cli("ingest", str(manifest), "--campaign", str(campaign_dir))
    assert second.returncode == 1
    assert {p.name: p.read_bytes() for p in (campaign_dir / "tables").glob("*.parquet")} == before
    assert sorted(p.name for p in (campaign_dir / "media").rglob("*")) == media_before
    refused = [line for line in second.stdout.splitlines() if line.startswith("refused")]
    assert len(refused) == 13, second.stdout
    assert all(re.match(r"refused line \d+: \S.*: \S", line) for line in refused)
    assert "Traceback" not in second.stderr + second.stdout


def test_clean_manifest_exits_zero_and_is_idempotent(tiny_world, tmp_path):
    campaign_dir = tmp_path / "campaign"
    assert cli("ingest", str(tiny_world), "--campaign", str(campaign_dir)).returncode == 0
    again = cli("ingest", str(tiny_world), "--campaign", str(campaign_dir))
    assert again.returncode == 0
    campaign = Campaign.open(campaign_dir)
    assert campaign.table("clips").num_rows == 8
    assert campaign.table("conditions").num_rows == 2
    clip = campaign.table("clips").to_pylist()[0]
    assert campaign.media_file(clip["media_path"]).is_file()
    assert json.loads(clip["params"])["world_seed"] == 3


def test_jsonl_manifest_with_a_broken_line(tiny_world, tmp_path):
    rows = world_rows(tiny_world)[:2]
    path = tiny_world.parent / "m.jsonl"
    lines = [json.dumps(dict(r, params=json.loads(r["params"]), seed=int(r["seed"]))) for r in rows]
    path.write_text(lines[0] + "\n{oops\n" + lines[1] + "\n")
    parsed, problems = read_manifest(path)
    assert [r.line for r in parsed] == [1, 3]
    assert problems[0].line == 2 and "not valid JSON" in problems[0].reason


def test_malformed_manifests_are_one_line_errors(tmp_path):
    (tmp_path / "m.csv").write_text("condition_id,clip\nc1,a.mp4\n")
    (tmp_path / "m.txt").write_text("hello")
    for manifest, message in [("m.csv", "missing column(s) reference_image, audio"),
                              ("m.txt", "unknown manifest type '.txt'"), ("nope.csv", "manifest not found")]:
        result = cli("ingest", str(tmp_path / manifest), "--campaign", str(tmp_path / "c"))
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and message in result.stderr
    from data_schemas import UserError

    (tmp_path / "header.csv").write_text(",".join(FIELDS) + "\n")
    (tmp_path / "empty.jsonl").write_text("")
    for manifest, message in [("header.csv", "no rows; a manifest has one line per clip"),
                              ("empty.jsonl", "no rows; a manifest has one line per clip"),
                              (".", "a folder; give the manifest file in it")]:
        with pytest.raises(UserError, match=re.escape(message)):
            read_manifest(tmp_path / manifest)


def test_a_full_disk_stops_ingest_in_one_line_and_keeps_the_campaign(tiny_world, tmp_path):
    from tests.campaign.tmpfs import small_tmpfs

    assert cli("world", "--out", str(tmp_path / "more"), "--conditions", "1", "--seed", "5", "--size", "64",
               "--seconds", "1").returncode == 0
    with small_tmpfs(tmp_path / "disk", "16m") as disk:
        campaign = disk.folder / "campaign"
        assert cli("ingest", str(tiny_world), "--campaign", str(campaign)).returncode == 0
        disk.fill()
        full = cli("ingest", str(tmp_path / "more" / "manifest.csv"), "--campaign", str(campaign))
        assert full.returncode == 1 and "Traceback" not in full.stderr
        assert [line for line in full.stderr.splitlines() if "error" in line] == [
            "pairs: error: no space left on the device: free space there or write to another folder, then run "
            "the command again"]
        disk.empty()
        assert not list(campaign.rglob("*.part"))
        assert Campaign.open(campaign).table("clips").num_rows == len(world_rows(tiny_world))
        again = cli("ingest", str(tmp_path / "more" / "manifest.csv"), "--campaign", str(campaign))
        assert again.returncode == 0, again.stderr
