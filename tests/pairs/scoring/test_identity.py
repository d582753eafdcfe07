"""Identity (CSIM): insightface's ArcFace path on a tiny ONNX model made here, and dlib's offline default."""

import shutil
import warnings

import numpy as np
import pytest
import torch

from data_schemas import UserError
from pairs.scoring.face_track import track_faces
from pairs.scoring.identity import csim, dlib_embedder, insightface_embedder
from world.build import make_condition, reference_image, render_clip


class TinyArcFace(torch.nn.Module):
    """ArcFace's interface (112 × 112 BGR in, an embedding out) at toy size."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 8, stride=8)
        self.fc = torch.nn.Linear(8 * 14 * 14, 32)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def faces():
    """Two world identities: their reference images with landmarks, and a clip of the first."""
    conditions = [make_condition(7, i, 64, 1.0) for i in range(2)]
    references = [reference_image(c) for c in conditions]
    clip = render_clip(conditions[0])
    return clip, track_faces(clip), [(r, track_faces(r[None]).landmarks[0]) for r in references]


@pytest.fixture(scope="module")
def arcface_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("buffalo_tiny") / "w600k_tiny.onnx"
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TinyArcFace(), torch.zeros(1, 3, 112, 112), str(path), input_names=["data"],
                          output_names=["embedding"], dynamic_axes={"data": {0: "batch"}}, dynamo=False)
    return path


def test_insightface_arcface_gives_one_for_the_reference_itself_and_less_for_a_stranger(faces, arcface_onnx):
    _, _, [(own, own_points), (other, other_points)] = faces
    embedder = insightface_embedder(arcface_onnx)
    assert embedder.name.startswith("insightface:w600k_tiny.onnx:")
    still = np.repeat(own[None], 8, axis=0)  # a clip that is the reference image, unmoving
    track = track_faces(still)
    assert csim(embedder, still, track, own, own_points) > 0.99
    assert csim(embedder, still, track, other, other_points) < 0.9


def test_a_model_pack_folder_finds_its_recognition_model(arcface_onnx, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(arcface_onnx.parent, pack)
    assert insightface_embedder(pack).name == insightface_embedder(arcface_onnx).name
    with pytest.raises(UserError, match="no .onnx model"):
        insightface_embedder(tmp_path / "empty")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(UserError, match="not an ONNX model"):
        insightface_embedder(tmp_path / "junk.onnx")


def test_dlib_default_knows_the_clip_is_its_own_reference(faces):
    clip, track, [(own, own_points), (other, other_points)] = faces
    embedder = dlib_embedder()
    assert embedder.name.startswith("dlib:dlib_face_recognition_resnet_model_v1.dat:")
    assert csim(embedder, clip, track, own, own_points) > csim(embedder, clip, track, other, other_points) + 0.02
