"""Identity: cosine similarity (CSIM) of each frame's face embedding to the reference image's.

Two backends, and every score records which one made it:
- `insightface` — its ArcFace ONNX recognition model (`--arcface-model` to a model pack folder such as
  buffalo_l, or to the `.onnx` file), on faces aligned to ArcFace's 112 × 112 template from five
  points of our FaceMesh track (eye centres, nose tip, mouth corners);
- `dlib` — the offline default: dlib's ResNet face-recognition model, which ships in the
  `face-recognition-models` package, on chips aligned by dlib's 5-point shape predictor inside the
  track's face box.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media_io.hashing import sha256_file
from data_schemas import UserError
from pairs.scoring.face_track import LEFT_EYE, NOSE_TIP, RIGHT_EYE, FaceTrack

MAX_FRAMES = 16  # frames embedded per clip, evenly spaced: CSIM is a mean, and embeddings cost
MOUTH_CORNERS = (61, 291)


@dataclass(frozen=True)
class FaceEmbedder:
    """Embeds the faces of RGB frames given their landmarks [T, 468, 2]; `name` says which model did it."""

    name: str
    embed: Callable[[np.ndarray, np.ndarray], np.ndarray]


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """[T, 5, 2] in ArcFace's order: image-left eye, image-right eye, nose tip, image-left and -right mouth corner."""
    eyes = np.stack([landmarks[:, list(eye)].mean(axis=1) for eye in (LEFT_EYE, RIGHT_EYE)], axis=1)  # centres
    mouth = landmarks[:, list(MOUTH_CORNERS)]
    eyes = np.where((eyes[:, :1, 0] <= eyes[:, 1:, 0])[..., None], eyes, eyes[:, ::-1])
    mouth = np.where((mouth[:, :1, 0] <= mouth[:, 1:, 0])[..., None], mouth, mouth[:, ::-1])
    return np.concatenate([eyes, landmarks[:, None, NOSE_TIP], mouth], axis=1)


def insightface_embedder(path: Path) -> FaceEmbedder:
    """ArcFace through insightface, from a `.onnx` file or the recognition model of a model pack folder."""
    from insightface.model_zoo import get_model
    from insightface.utils import face_align

    path = Path(path)
    candidates = sorted(path.glob("*.onnx")) if path.is_dir() else [path]
    if not path.exists() or not candidates or (path.is_file() and path.suffix.lower() != ".onnx"):
        raise UserError(f"--arcface-model {path}: no .onnx model there; give insightface's model pack folder "
                        "(e.g. buffalo_l) or its recognition .onnx file")
    for candidate in candidates:
        try:
            model = get_model(str(candidate), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime rejects a file that is not a model
            raise UserError(f"{candidate}: not an ONNX model ({str(exc).splitlines()[0]})") from None
        if model is not None and getattr(model, "taskname", None) == "recognition":
            break
    else:
        raise UserError(f"--arcface-model {path}: no ArcFace recognition model among {len(candidates)} .onnx files")
    size = model.input_size[0]

    def embed(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        points = five_points(landmarks)
        faces = [face_align.norm_crop(np.ascontiguousarray(f[..., ::-1]), p, image_size=size)
                 for f, p in zip(frames, points)]
        return model.get_feat(faces)

    return FaceEmbedder(f"insightface:{candidate.name}:{sha256_file(candidate)[:12]}", embed)


def dlib_embedder() -> FaceEmbedder:
    """dlib's ResNet face descriptor, with the models the `face-recognition-models` package ships."""
    import dlib

    # The package's __init__ needs pkg_resources, gone from recent setuptools; its files are all we need.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("identity: no offline face model; install face-recognition-models or pass --arcface-model")
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    recogniser = models / "dlib_face_recognition_resnet_model_v1.dat"
    shapes = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(recogniser))

    def embed(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        out = []
        for frame, points in zip(frames, landmarks):
            (x0, y0), (x1, y1) = np.nanmin(points, axis=0), np.nanmax(points, axis=0)
            frame = np.ascontiguousarray(frame)
            shape = shapes(frame, dlib.rectangle(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))))
            out.append(np.array(net.compute_face_descriptor(frame, shape)))
        return np.stack(out)

    return FaceEmbedder(f"dlib:{recogniser.name}:{sha256_file(recogniser)[:12]}", embed)


def load_embedder(arcface_model: Path | None) -> FaceEmbedder:
    return insightface_embedder(arcface_model) if arcface_model is not None else dlib_embedder()


def csim(embedder: FaceEmbedder, frames: np.ndarray, track: FaceTrack, reference: np.ndarray,
         reference_landmarks: np.ndarray) -> float:
    """Mean cosine similarity of up to MAX_FRAMES evenly spaced face frames to the reference face."""
    with_face = np.flatnonzero(track.found)
    chosen = with_face[np.linspace(0, len(with_face) - 1, min(MAX_FRAMES, len(with_face))).round().astype(int)]
    vectors = embedder.embed(frames[chosen], track.landmarks[chosen])
    anchor = embedder.embed(reference[None], reference_landmarks[None])[0]
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return float(np.mean(vectors @ (anchor / np.linalg.norm(anchor))))

