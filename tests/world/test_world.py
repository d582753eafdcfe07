import csv
import json

import numpy as np
import pytest

from media_io.codecs import probe, read_frames
from world.build import make_condition, reference_image, render_clip


def test_world_is_deterministic_by_seed():
    a, b = make_condition(5, 1, size=64, seconds=1.0), make_condition(5, 1, size=64, seconds=1.0)
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.pose, b.pose)
    assert np.array_equal(render_clip(a, "jitter", seed=5), render_clip(b, "jitter", seed=5))
    other = make_condition(6, 1, size=64, seconds=1.0)
    assert not np.array_equal(a.audio, other.audio)


def test_build_world_writes_identical_files_twice(tmp_path, tiny_world):
    from tests.conftest import TINY
    from world.build import build_world

    again = build_world(tmp_path, **TINY)
    for row in csv.DictReader(open(tiny_world)):
        for key in ("clip", "reference_image", "audio", "pose"):
            assert (tiny_world.parent / row[key]).read_bytes() == (again.parent / row[key]).read_bytes()


def test_faces_differ_across_conditions():
    refs = [reference_image(make_condition(0, i, size=64, seconds=0.2)).astype(float) for i in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(refs[i] - refs[j]).mean() > 10


def test_manifest_records_clips_and_degradations(tiny_world):
    rows = list(csv.DictReader(open(tiny_world)))
    assert len(rows) == 2 * 4
    degradations = sorted(json.loads(r["params"])["degradation"] or "none" for r in rows if r["condition_id"] ==
                          rows[0]["condition_id"])
    assert degradations == ["frozen_mouth", "jitter", "none", "shift"]
    shift = next(r for r in rows if json.loads(r["params"])["degradation"] == "shift")
    assert json.loads(shift["params"])["shift_frames"] == 4
    info = probe(tiny_world.parent / rows[0]["clip"])
    assert (info.fps, info.width, info.height, info.has_audio) == (25.0, 64, 64, True)


@pytest.fixture(scope="module")
def face_mesh():
    mediapipe = pytest.importorskip("mediapipe")
    with mediapipe.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        yield mesh


def mouth_gaps(mesh, frames):
    gaps = []
    for frame in frames:
        found = mesh.process(frame).multi_face_landmarks
        gaps.append(None if not found else found[0].landmark[14].y - found[0].landmark[13].y)
    return gaps


def test_a_real_landmark_detector_finds_the_face_and_mouth_in_every_frame(face_mesh, tiny_world):
    for row in csv.DictReader(open(tiny_world)):
        gaps = mouth_gaps(face_mesh, read_frames(tiny_world.parent / row["clip"]))
        assert None not in gaps, f"face lost in {row['clip']}"


def test_mouth_follows_audio_energy_and_degradations_break_it(face_mesh):
    condition = make_condition(0, 0, size=96, seconds=3.0)
    in_sync = np.array(mouth_gaps(face_mesh, render_clip(condition)))
    frozen = np.array(mouth_gaps(face_mesh, render_clip(condition, "frozen_mouth")))
    shifted = np.array(mouth_gaps(face_mesh, render_clip(condition, "shift", shift_frames=4)))
    assert np.corrcoef(in_sync, condition.mouth)[0, 1] > 0.8
    assert np.std(frozen) < 0.2 * np.std(in_sync)
    assert np.corrcoef(shifted, condition.mouth)[0, 1] < np.corrcoef(in_sync, condition.mouth)[0, 1] - 0.2
    assert np.corrcoef(shifted[4:], condition.mouth[:-4])[0, 1] > 0.8
