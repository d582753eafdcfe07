"""A real face the embedded SyncNet never saw: its scores are kept but marked `no sync peak`, and nothing
downstream follows them; world clips keep their peak."""

import types

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from campaign.store import Campaign
from data_schemas import UserError
from data_schemas.constants import FPS, SAMPLE_RATE
from media_io.codecs import write_audio, write_image, write_video
from pairs.candidates.ingest import ingest_rows
from pairs.candidates.manifest import ManifestRow, read_manifest
from pairs.scoring.score import score_campaign
from pairs.scoring.scorers import ScorerOptions, load_scorers
from syncnet.lse import NO_SYNC_PEAK, VSHIFT, has_sync_peak

SIZE, SECONDS, LAG = 128, 2.0, 6
PHOTO_CLIPS = ("in_sync", f"lag{LAG}", "static")


def talking_photo(folder):
    """scikit-image's astronaut portrait whose mouth band stretches with a speech-like loudness envelope, muxed
    with that speech: in sync, lagging LAG frames, and static. Returns manifest rows."""
    from skimage.data import astronaut

    from pairs.scoring.face_track import track_faces
    from world.speech import loudness_per_frame, synthesize_speech

    still = cv2.resize(astronaut()[0:240, 100:340], (SIZE, SIZE), interpolation=cv2.INTER_AREA)  # head and shoulders
    mouth = track_faces(still[None]).landmarks[0]
    top, bottom, left, right = mouth[0, 1], mouth[17, 1], mouth[61, 0], mouth[291, 0]  # FaceMesh lip landmarks
    audio = synthesize_speech(np.random.default_rng(0), SECONDS, SAMPLE_RATE)
    loudness = loudness_per_frame(audio, SAMPLE_RATE, FPS, int(SECONDS * FPS))
    lip = bottom - top
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    centre, chin = (top + bottom) / 2, bottom + 3 * lip
    # How far each pixel moves down when the mouth is fully open: the lower lip most, fading out to the chin
    # and across the cheeks; rows above the mouth's centre stay.
    drop = np.where(ys < centre, 0, np.where(ys < bottom, (ys - centre) / (bottom - centre),
                                             np.clip((chin - ys) / (chin - bottom), 0, 1)))
    drop *= lip * np.clip(np.minimum(xs - left + lip, right + lip - xs) / lip, 0, 1)

    def clip(opening):
        return np.stack([cv2.remap(still, xs, ys - o * drop, cv2.INTER_LINEAR) for o in opening])

    lagged = np.concatenate([np.full(LAG, loudness[0]), loudness])[: len(loudness)]
    write_image(folder / "reference.png", still)
    write_audio(folder / "speech.wav", audio)
    rows = []
    for name, opening in zip(PHOTO_CLIPS, (loudness, lagged, np.zeros_like(loudness))):
        write_video(folder / f"{name}.mp4", clip(opening), FPS, audio)
        rows.append(ManifestRow(line=len(rows) + 1, condition_id="astronaut", clip=folder / f"{name}.mp4",
                                reference_image=folder / "reference.png", audio=folder / "speech.wav",
                                generator="photo", params={"variant": name}))
    return rows


def marks(campaign):
    """{clip name (photo variant or world degradation): {metric: (value, mark)}} of the sync scores."""
    rows = campaign.connect().execute("""
        SELECT coalesce(json_extract_string(c.params, '$.variant'), json_extract_string(c.params, '$.degradation'),
                        'in_sync_world') || ':' || c.condition_id,
               s.metric, s.value, json_extract_string(s.details, '$.mark')
        FROM scores s JOIN clips c ON c.sha256 = s.clip WHERE s.scorer = 'sync'
    """).fetchall()
    out = {}
    for name, metric, value, mark in rows:
        out.setdefault(name, {})[metric] = (value, mark)
    return out


@pytest.fixture(scope="module")
def scored(tiny_world, tmp_path_factory):
    """A campaign scored twice: first the photo clips alone through `pairs score`, then the world's clips."""
    from pairs.cli import app
    from pairs.preferences.build import BuildOptions, build_pairs

    root = tmp_path_factory.mktemp("photo")
    campaign = Campaign.open(root / "campaign", create=True)
    ingest_rows(campaign, talking_photo(root), progress=False)
    cli = CliRunner().invoke(app, ["score", "--campaign", str(campaign.root), "--scorers", "sync,expression"],
                             terminal_width=200)
    with pytest.raises(UserError, match="marked .no sync peak") as photo_only_build:
        build_pairs(campaign, BuildOptions(source="auto", criterion="lip_sync", heldout=0.0))
    ingest_rows(campaign, read_manifest(tiny_world)[0], progress=False)
    ready, _ = load_scorers(ScorerOptions(scorers=("sync",)))
    world_run = score_campaign(campaign, ready, progress=False)
    return types.SimpleNamespace(campaign=campaign, cli=cli, photo_only_build=photo_only_build.value,
                                 world_run=world_run, world_advice=world_run.mark_advice(ready))


def test_the_embedded_syncnet_marks_a_real_face_and_not_the_world(scored):
    found = marks(scored.campaign)
    for name in PHOTO_CLIPS:
        metrics = found[f"{name}:astronaut"]
        assert set(metrics) == {"lse_c", "lse_c_at_0", "lse_d", "offset"}
        assert all(value is not None and mark == NO_SYNC_PEAK for value, mark in metrics.values()), name
    world = {name: m for name, m in found.items() if not name.endswith(":astronaut")}
    assert len(world) == 8
    for name, metrics in world.items():
        if name.startswith("frozen_mouth"):  # a mouth that never moves has no sync to find: marked too
            continue
        assert all(mark is None for _, mark in metrics.values()), name
        assert metrics["offset"][0] == (4 if name.startswith("shift") else 0), name
    marked_world = scored.world_run.marked.get("sync", {}).get(NO_SYNC_PEAK, 0)  # the frozen mouths, at most
    assert marked_world <= 2 and scored.world_advice == []  # a minority of world clips: no warning


def test_the_photo_clips_are_a_fair_test(scored):
    """The mouth really follows the speech: expression's mouth_audio sees sync where SyncNet cannot."""
    rows = dict(scored.campaign.connect().execute("""
        SELECT json_extract_string(c.params, '$.variant'), s.value FROM scores s JOIN clips c ON c.sha256 = s.clip
        WHERE c.generator = 'photo' AND s.metric = 'mouth_audio'
    """).fetchall())
    assert rows["in_sync"] > rows["static"] + 0.2


def test_pairs_score_warns_once_and_the_tables_show_the_mark(scored, monkeypatch):
    import pairs.cli

    assert scored.cli.exit_code == 0, scored.cli.output
    warnings = [line for line in scored.cli.output.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "not comparable" in warnings[0] and "--syncnet-weights" in warnings[0]
    marked = 3 + scored.world_run.marked.get("sync", {}).get(NO_SYNC_PEAK, 0)
    monkeypatch.setattr(pairs.cli.console, "width", 240)  # table cells unfolded
    for command in ("scores", "summary"):
        shown = CliRunner().invoke(pairs.cli.app, [command, "--campaign", str(scored.campaign.root)])
        assert shown.exit_code == 0 and f"{marked} {NO_SYNC_PEAK}" in shown.output, shown.output


def test_marked_scores_make_no_pairs_and_guide_no_scripted_annotator(scored):
    from pairs.scoring.counted_scores import clip_score_lookup
    from pairs.preferences.build import BuildOptions, build_pairs

    assert "rescore with other weights" in str(scored.photo_only_build)
    photo = {r[0] for r in scored.campaign.connect().execute(
        "SELECT sha256 FROM clips WHERE generator = 'photo'").fetchall()}
    pairs = build_pairs(scored.campaign, BuildOptions(source="auto", criterion="lip_sync", heldout=0.0))
    assert pairs.num_rows > 0
    assert not photo & set(pairs.column("chosen").to_pylist() + pairs.column("rejected").to_pylist())
    lookup = clip_score_lookup(scored.campaign, "sync/lse_c")
    assert lookup and not photo & set(lookup)


@pytest.mark.parametrize(("lse_c", "offset", "floor", "peak"), [
    (2.4, 0, 1.0, True), (2.4, VSHIFT, 1.0, False), (2.4, -VSHIFT, None, False), (0.2, -10, 1.0, False),
    (0.2, -10, None, True),
])
def test_a_sync_peak_is_inside_the_search_and_above_the_floor(lse_c, offset, floor, peak):
    assert has_sync_peak(lse_c, offset, floor) is peak
