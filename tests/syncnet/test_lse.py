"""SyncNet maths against syncnet_python itself, and the embedded SyncNet on the world."""

import re
import types

import cv2
import numpy as np
import pytest
import torch
from scipy.io import wavfile

from data_schemas.constants import FPS, SAMPLE_RATE
from syncnet.lse import embed, lse, resample_frames


def test_lse_equals_syncnet_python_on_identical_crops_and_weights(tmp_path, capsys):
    from syncnet_python import SyncNetInstance, SyncNetModel

    torch.manual_seed(0)
    net = SyncNetModel().eval()
    torch.save(net.state_dict(), tmp_path / "syncnet_v2.model")
    rng = np.random.default_rng(0)
    frames = 24
    for i in range(frames):  # smooth random images, so windows differ the way faces do
        image = cv2.resize(rng.integers(0, 255, (14, 14, 3), dtype=np.uint8), (224, 224))
        cv2.imwrite(str(tmp_path / f"{i:06d}.jpg"), image)
    audio = (np.sin(np.arange(frames * 640) / 9) * rng.normal(0, 4000, frames * 640)).astype(np.int16)
    wavfile.write(tmp_path / "audio.wav", SAMPLE_RATE, audio)

    reference = SyncNetInstance(SyncNetModel(), device="cpu")
    reference.loadParameters(str(tmp_path / "syncnet_v2.model"))
    offset, conf, dist = reference.evaluate(types.SimpleNamespace(tmp_dir=str(tmp_path), batch_size=20, vshift=15))

    crops = np.stack([cv2.imread(str(tmp_path / f"{i:06d}.jpg")) for i in range(frames)])
    ours = lse(*embed(net, crops, audio, batch_size=7))
    assert ours.windows == frames - 5
    assert ours.lse_d == pytest.approx(dist, abs=1e-3)
    assert ours.lse_c == pytest.approx(conf, abs=1e-3)
    assert ours.offset == offset
    printed = capsys.readouterr().out  # evaluate prints its framewise confidence to 3 decimals
    framewise = [float(v) for v in re.findall(r"-?\d+\.\d+", printed.split("Framewise conf:")[1].split("AV offset")[0])]
    assert ours.window_confidence == pytest.approx(framewise, abs=1e-3)


def test_other_frame_rates_are_resampled_to_25_fps():
    frames = np.arange(60)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    at_25 = resample_frames(frames, 50.0)
    assert len(at_25) == 30 and at_25[1, 0, 0, 0] == 2
    assert resample_frames(frames, float(FPS)) is frames


@pytest.mark.parametrize("make", ["real", "embedded"])
def test_the_fast_streams_equal_the_original(make):
    from syncnet_python import SyncNetModel

    from syncnet.fast_lip import FastSyncNet, fast
    from syncnet.networks import EmbeddedSyncNet

    torch.manual_seed(0)
    net = SyncNetModel() if make == "real" else EmbeddedSyncNet()
    for module in net.modules():  # non-trivial BatchNorm statistics, so folding them is really tested
        if isinstance(module, (torch.nn.BatchNorm3d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    net.eval()
    size = 224 if make == "real" else 64
    x = torch.rand(3, 3, 5, size, size) * 255
    quick = fast(net)
    assert isinstance(quick, FastSyncNet)
    with torch.no_grad():
        expected = net.forward_lip(x)
        assert torch.allclose(quick.forward_lip(x), expected, atol=1e-4 * expected.abs().max().item())
        mfccs = torch.randn(4, 1, 13, 20) * 10
        expected = net.forward_aud(mfccs)
        assert torch.allclose(quick.forward_aud(mfccs), expected, atol=1e-4 * expected.abs().max().item())


def test_bf16_is_close_to_fp32_and_is_another_version(tiny_world):
    from pairs.scoring.face_track import track_faces
    from pairs.candidates.manifest import read_manifest
    from media_io.codecs import read_audio, read_frames
    from pairs.scoring.scorers import ScorerOptions, load_scorers
    from syncnet.networks import load_syncnet
    from syncnet.lse import sync_scores

    clip = read_manifest(tiny_world)[0][0].clip
    frames, audio = read_frames(clip), read_audio(clip)
    landmarks = track_faces(frames).landmarks
    weights = load_syncnet(None)
    exact, quick = (sync_scores(weights.net, weights.crop, frames, 25.0, landmarks, audio, precision=p)
                    for p in ("fp32", "bf16"))
    assert quick.offset == exact.offset
    assert quick.lse_d == pytest.approx(exact.lse_d, abs=0.02) and quick.lse_c == pytest.approx(exact.lse_c, abs=0.02)
    (fp32,), _ = load_scorers(ScorerOptions(scorers=("sync",)))
    (bf16,), _ = load_scorers(ScorerOptions(scorers=("sync",), precision="bf16"))
    assert bf16.version == fp32.version + "+bf16"


def test_lse_c_at_0_is_lse_c_measured_at_offset_0():
    rng = torch.Generator().manual_seed(0)
    aud = torch.randn(40, 8, generator=rng)
    for late in (0, 3):  # the lips show window k's sound at window k + late
        lip = torch.roll(aud, late, 0) + 0.01 * torch.randn(40, 8, generator=rng)
        result = lse(lip, aud, vshift=5)
        padded = torch.nn.functional.pad(aud, (0, 0, 5, 5))
        by_offset = torch.stack([torch.nn.functional.pairwise_distance(lip, padded[k:k + 40]).mean()
                                 for k in range(11)])
        assert result.lse_c == pytest.approx(float(by_offset.median() - by_offset.min()), abs=1e-5)
        assert result.lse_c_at_0 == pytest.approx(float(by_offset.median() - by_offset[5]), abs=1e-5)
        assert (result.offset == 0) == (late == 0)
        if late:
            assert result.lse_c_at_0 < result.lse_c - 1.0  # the late lips' peak is elsewhere
        else:
            assert result.lse_c_at_0 == result.lse_c
