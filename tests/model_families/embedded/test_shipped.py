"""The checkpoint shipped in the repository: it must show the reference face with a mouth that moves."""

import numpy as np
import pytest

from data_schemas.constants import FPS
from world.build import make_condition, reference_image
from model_families.embedded.motion_features import motion_features
from model_families.registry import SHIPPED, load_model

pytestmark = pytest.mark.skipif(not (SHIPPED / "denoiser").is_dir(), reason="no shipped checkpoint")


@pytest.fixture(scope="module")
def samples():
    pipeline = load_model("embedded")
    condition = make_condition(seed=97, index=3, size=pipeline.size, seconds=2.4)  # a world it never saw
    frames = 60
    motion = motion_features(condition.audio, condition.pose, FPS, frames)
    reference = reference_image(condition)
    clips = pipeline.sample_motion(np.repeat(reference[None], 2, 0), np.repeat(motion[None], 2, 0), [0, 1], steps=20)
    return condition, reference, clips


def test_samples_keep_the_reference_face(samples):
    condition, reference, clips = samples
    stranger = reference_image(make_condition(seed=97, index=4, size=reference.shape[0], seconds=0.2))
    own = np.abs(clips.astype(float) - reference).mean()
    other = np.abs(clips.astype(float) - stranger).mean()
    assert own < 0.3 * other


def test_a_landmark_detector_finds_the_face_and_the_mouth_follows_the_audio(samples):
    mediapipe = pytest.importorskip("mediapipe")
    condition, _, clips = samples
    with mediapipe.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        for clip in clips:
            gaps = []
            for frame in clip:
                found = mesh.process(frame).multi_face_landmarks
                gaps.append(np.nan if not found else found[0].landmark[14].y - found[0].landmark[13].y)
            gaps = np.array(gaps)
            detected = ~np.isnan(gaps)
            assert detected.mean() > MIN_DETECTED
            assert np.corrcoef(gaps[detected], condition.mouth[: len(gaps)][detected])[0, 1] > MIN_MOUTH_CORRELATION


def test_seeds_give_visibly_different_candidates(samples):
    _, _, clips = samples
    assert np.abs(clips[0].astype(float) - clips[1]).mean() > 2.0


MIN_DETECTED = 0.9
MIN_MOUTH_CORRELATION = 0.7
