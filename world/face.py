"""Procedural portrait: a drawn face whose mouth, eyes and head pose are set per frame."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Rendering happens at this multiple of the output size, then is averaged down, so thin features
# (lids, lips) stay smooth at 64 px.
_SUPERSAMPLE = 3

_SKIN_TONES = np.array(
    [[233, 198, 170], [224, 172, 138], [198, 140, 105], [160, 110, 80], [120, 80, 56], [245, 215, 190]],
    dtype=np.float32,
)
_HAIR_COLOURS = np.array(
    [[30, 25, 20], [70, 45, 25], [120, 80, 40], [200, 170, 110], [150, 60, 30], [90, 90, 95]], dtype=np.float32
)
_IRIS_COLOURS = np.array([[70, 45, 25], [60, 100, 140], [70, 110, 70], [40, 30, 25]], dtype=np.float32)


@dataclass(frozen=True)
class FaceStyle:
    """What makes one person look different from another (fixed for a condition)."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]
    shirt: tuple[float, float, float]
    background: tuple[float, float, float]
    face_width: float  # half-width of the face as a fraction of the frame
    face_height: float
    eye_spacing: float  # half the distance between the eyes, as a fraction of face width
    eye_size: float
    mouth_width: float  # half-width of the mouth, as a fraction of face width
    brow_lift: float
    hair_volume: float


@dataclass(frozen=True)
class FaceState:
    """What changes from frame to frame."""

    mouth_open: float = 0.0  # 0 closed … 1 wide open
    eyes_closed: float = 0.0  # 0 open … 1 shut
    yaw: float = 0.0  # radians, + turns to the viewer's right
    pitch: float = 0.0  # radians, + looks up
    roll: float = 0.0  # radians, + tilts clockwise
    shift_x: float = 0.0  # whole-frame shift in pixels (camera shake)
    shift_y: float = 0.0


def random_style(rng: np.random.Generator) -> FaceStyle:
    """Draw a face style; different seeds give visibly different people."""

    def tint(palette: np.ndarray, spread: float) -> tuple[float, float, float]:
        base = palette[rng.integers(len(palette))]
        return tuple(np.clip(base + rng.normal(0, spread, 3), 0, 255).tolist())

    skin = np.array(tint(_SKIN_TONES, 8))
    lips = np.clip(skin * np.array([0.78, 0.5, 0.5]) + np.array([25, 0, 5]), 0, 255)
    return FaceStyle(
        skin=tuple(skin.tolist()),
        hair=tint(_HAIR_COLOURS, 10),
        iris=tint(_IRIS_COLOURS, 10),
        lips=tuple(lips.tolist()),
        shirt=tuple(rng.uniform(30, 220, 3).tolist()),
        background=tuple(rng.uniform(150, 235, 3).tolist()),
        face_width=float(rng.uniform(0.22, 0.26)),
        face_height=float(rng.uniform(0.29, 0.33)),
        eye_spacing=float(rng.uniform(0.36, 0.44)),
        eye_size=float(rng.uniform(0.15, 0.19)),
        mouth_width=float(rng.uniform(0.30, 0.38)),
        brow_lift=float(rng.uniform(0.9, 1.15)),
        hair_volume=float(rng.uniform(0.9, 1.2)),
    )


def render_face(style: FaceStyle, state: FaceState, size: int) -> np.ndarray:
    """Render one RGB uint8 frame of `size`×`size` pixels."""
    s = size * _SUPERSAMPLE
    canvas = _background(style, s)
    head = _head_layer(style, state, s)
    canvas = _composite(canvas, head, state, s)
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(small, 0, 255).astype(np.uint8)


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x)), int(round(y))


def _background(style: FaceStyle, s: int) -> np.ndarray:
    ramp = np.linspace(1.05, 0.85, s, dtype=np.float32)[:, None, None]
    canvas = np.broadcast_to(np.array(style.background, np.float32) * ramp, (s, s, 3)).copy()
    # Shoulders and neck sit below the head and do not turn with it.
    cx = s * 0.5
    cv2.ellipse(canvas, _pt(cx, s * 1.08), _pt(s * 0.42, s * 0.25), 0, 0, 360, style.shirt, -1, cv2.LINE_AA)
    neck = np.array(style.skin) * 0.82
    cv2.rectangle(canvas, _pt(cx - s * 0.09, s * 0.62), _pt(cx + s * 0.09, s * 0.86), neck.tolist(), -1)
    return canvas


def _head_layer(style: FaceStyle, state: FaceState, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw the head on a transparent layer; returns (rgb, alpha) before the roll is applied."""
    rgb = np.zeros((s, s, 3), np.float32)
    alpha = np.zeros((s, s), np.float32)
    cx, cy = s * 0.5, s * 0.45
    a, b = s * style.face_width, s * style.face_height
    a_turned = a * (1 - 0.12 * abs(np.sin(state.yaw)))
    # Features slide across the face as it turns: that is what a yaw looks like head-on.
    fx = cx + a * 0.55 * np.sin(state.yaw)
    fy = cy - b * 0.45 * np.sin(state.pitch)

    def fill_ellipse(centre, axes, colour, angle=0.0):
        cv2.ellipse(rgb, _pt(*centre), _pt(*axes), angle, 0, 360, colour, -1, cv2.LINE_AA)
        cv2.ellipse(alpha, _pt(*centre), _pt(*axes), angle, 0, 360, 1.0, -1, cv2.LINE_AA)

    # Hair behind the head, then ears, then the face.
    fill_ellipse((cx, cy - b * 0.12), (a * 1.12 * style.hair_volume, b * 1.0), style.hair)
    for side in (-1, 1):
        ear_x = cx + side * a_turned * 0.98 - a * 0.2 * np.sin(state.yaw)
        fill_ellipse((ear_x, cy + b * 0.05), (a * 0.16, b * 0.2), (np.array(style.skin) * 0.9).tolist())
    fill_ellipse((cx, cy), (a_turned, b), style.skin)
    _shade_face(rgb, (cx, cy), (a_turned, b), s)
    # Fringe: an ellipse clipped to the top of the face.
    cut = int(cy - b * 0.55)
    fringe = np.zeros((cut, s), np.float32)
    cv2.ellipse(fringe, _pt(cx, cy - b * 0.78), _pt(a_turned * 1.05, b * 0.42), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    top = rgb[:cut]
    top[:] = top * (1 - fringe[..., None]) + np.array(style.hair, np.float32) * fringe[..., None]

    eye_dx = a * style.eye_spacing
    eye_y = fy - b * 0.1
    eye_r = a * style.eye_size
    for side in (-1, 1):
        ex = fx + side * eye_dx
        _draw_eye(rgb, (ex, eye_y), eye_r, style, state.eyes_closed)
        brow_y = eye_y - eye_r * 1.9 * style.brow_lift
        cv2.ellipse(
            rgb, _pt(ex, brow_y + eye_r * 0.6), _pt(eye_r * 1.5, eye_r * 0.9), 0, 200 if side < 0 else 210,
            330 if side < 0 else 340, style.hair, max(2, int(eye_r * 0.35)), cv2.LINE_AA,
        )
    skin = np.array(style.skin)
    nose_top, nose_tip = (fx, eye_y + eye_r * 0.6), (fx + a * 0.04, fy + b * 0.25)
    cv2.line(rgb, _pt(*nose_top), _pt(*nose_tip), (skin * 0.8).tolist(), max(1, int(s * 0.006)), cv2.LINE_AA)
    for side in (-1, 1):
        cv2.circle(rgb, _pt(fx + side * a * 0.09, fy + b * 0.27), max(1, int(a * 0.035)), (skin * 0.55).tolist(),
                   -1, cv2.LINE_AA)
    _draw_mouth(rgb, (fx, fy + b * 0.52), a * style.mouth_width, b, style, state.mouth_open)
    return rgb, alpha


def _shade_face(rgb: np.ndarray, centre, axes, s: int) -> None:
    """Darken towards the face outline so the face reads as a rounded surface."""
    x0, x1 = max(0, int(centre[0] - axes[0])), min(s, int(centre[0] + axes[0]) + 1)
    y0, y1 = max(0, int(centre[1] - axes[1])), min(s, int(centre[1] + axes[1]) + 1)
    yy, xx = np.ogrid[y0:y1, x0:x1]
    dy = (yy.astype(np.float32) - centre[1]) / axes[1]
    r = np.sqrt(((xx.astype(np.float32) - centre[0]) / axes[0]) ** 2 + dy**2)
    shade = np.clip(1.08 - 0.35 * np.clip(r - 0.55, 0, 1) ** 1.5 - 0.05 * dy, 0.6, 1.1)
    shade[r > 1.0] = 1.0
    rgb[y0:y1, x0:x1] *= shade[..., None]


def _draw_eye(rgb: np.ndarray, centre, r: float, style: FaceStyle, closed: float) -> None:
    skin = np.array(style.skin)
    cx, cy = centre
    cv2.ellipse(rgb, _pt(cx, cy), _pt(r * 1.25, r * 0.75), 0, 0, 360, (skin * 0.75).tolist(), -1, cv2.LINE_AA)
    cv2.ellipse(rgb, _pt(cx, cy), _pt(r * 1.05, r * 0.55), 0, 0, 360, (245, 245, 240), -1, cv2.LINE_AA)
    cv2.circle(rgb, _pt(cx, cy), int(r * 0.5), style.iris, -1, cv2.LINE_AA)
    cv2.circle(rgb, _pt(cx, cy), int(r * 0.22), (10, 10, 10), -1, cv2.LINE_AA)
    cv2.circle(rgb, _pt(cx + r * 0.15, cy - r * 0.15), max(1, int(r * 0.09)), (255, 255, 255), -1, cv2.LINE_AA)
    if closed > 0:
        # The upper lid comes down over the eye: a skin-coloured band from the top.
        top = int(cy - r * 0.7)
        bottom = int(cy - r * 0.7 + closed * r * 1.45)
        band = rgb[top:bottom]
        lid = np.zeros(band.shape[:2], np.float32)
        cv2.ellipse(lid, _pt(cx, cy - top), _pt(r * 1.15, r * 0.68), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
        band[:] = band * (1 - lid[..., None]) + (skin * 0.92) * lid[..., None]
        if closed > 0.7:
            cv2.line(rgb, _pt(cx - r * 1.1, bottom), _pt(cx + r * 1.1, bottom), (skin * 0.45).tolist(),
                     max(1, int(r * 0.12)), cv2.LINE_AA)
    cv2.ellipse(rgb, _pt(cx, cy - r * 0.62 + closed * r * 1.2), _pt(r * 1.15, r * 0.2), 0, 180, 360,
                (30, 25, 25), max(1, int(r * 0.12)), cv2.LINE_AA)


def _draw_mouth(rgb: np.ndarray, centre, half_width: float, face_b: float, style: FaceStyle, opening: float) -> None:
    cx, cy = centre
    opening = float(np.clip(opening, 0.0, 1.0))
    gap = face_b * (0.012 + 0.2 * opening)
    lip = max(2.0, face_b * 0.05)
    w = half_width * (1.0 - 0.15 * opening)  # lips round a little as the jaw drops
    cv2.ellipse(rgb, _pt(cx, cy + gap * 0.35), _pt(w * 1.02, gap + lip * 1.3), 0, 0, 360, style.lips, -1, cv2.LINE_AA)
    cv2.ellipse(rgb, _pt(cx, cy + gap * 0.35), _pt(w * 0.85, gap), 0, 0, 360, (45, 15, 20), -1, cv2.LINE_AA)
    if opening > 0.25:
        cv2.ellipse(rgb, _pt(cx, cy + gap * 0.35 - gap * 0.7), _pt(w * 0.6, gap * 0.3), 0, 0, 180, (235, 230, 220),
                    -1, cv2.LINE_AA)


def _composite(canvas: np.ndarray, head: tuple[np.ndarray, np.ndarray], state: FaceState, s: int) -> np.ndarray:
    rgb, alpha = head
    pivot = (s * 0.5, s * 0.7)  # the head tilts about the neck
    m = cv2.getRotationMatrix2D(pivot, -np.degrees(state.roll), 1.0)
    m[:, 2] += (state.shift_x * _SUPERSAMPLE, state.shift_y * _SUPERSAMPLE)
    rgb = cv2.warpAffine(rgb, m, (s, s), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(alpha, m, (s, s), flags=cv2.INTER_LINEAR)[..., None]
    return canvas * (1 - alpha) + rgb * alpha
