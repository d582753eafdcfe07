import numpy as np
import pytest

from data_schemas import UserError
from data_schemas.constants import SAMPLE_RATE
from media_io.codecs import probe, read_audio, read_frames, read_image, write_audio, write_image, write_video


def test_write_probe_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(np.linspace(0, 255, 30, dtype=np.uint8)[:, None, None, None], 48, 1).repeat(64, 2).repeat(3, 3)
    audio = rng.normal(0, 0.1, int(1.2 * SAMPLE_RATE)).astype(np.float32)
    path = tmp_path / "clip.mp4"
    write_video(path, frames, 25.0, audio)
    info = probe(path)
    assert (info.fps, info.frames, info.width, info.height) == (25.0, 30, 64, 48)
    assert info.duration == pytest.approx(1.2)
    assert info.has_audio and info.sample_rate == SAMPLE_RATE
    back = read_frames(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames).mean() < 3  # lossy, but close
    sound = read_audio(path)
    assert sound.dtype == np.float32 and len(sound) >= len(audio)
    # AAC must not delay the audio against the video: lip sync depends on it.
    lags = range(-400, 401)
    corr = [np.dot(audio[2000:16000], sound[2000 + k:16000 + k]) for k in lags]
    assert lags[int(np.argmax(corr))] == 0


def test_audio_resampled_to_16k_mono(tmp_path):
    t = np.arange(44100) / 44100
    write_audio(tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
    sound = read_audio(tmp_path / "a.wav")
    assert len(sound) == pytest.approx(SAMPLE_RATE, abs=40)
    spectrum = np.abs(np.fft.rfft(sound))
    assert np.argmax(spectrum) * SAMPLE_RATE / len(sound) == pytest.approx(440, abs=3)


def test_silent_video_has_no_audio(tmp_path):
    write_video(tmp_path / "v.mp4", np.zeros((5, 32, 32, 3), np.uint8), 30.0)
    assert not probe(tmp_path / "v.mp4").has_audio
    with pytest.raises(UserError, match="no audio track"):
        read_audio(tmp_path / "v.mp4")


def test_bad_files_raise_one_clear_error(tmp_path):
    write_video(tmp_path / "v.mp4", np.zeros((25, 32, 32, 3), np.uint8), 25.0, np.zeros(16000, np.float32))
    data = (tmp_path / "v.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.mp4").write_text("not a video")
    for name, pattern in [("cut.mp4", "truncated"), ("text.mp4", "not a readable media file"),
                          ("missing.mp4", "file not found")]:
        with pytest.raises(UserError, match=pattern) as error:
            probe(tmp_path / name)
        assert str(error.value).startswith(str(tmp_path / name)) and "\n" not in str(error.value)
    with pytest.raises(UserError, match="not a readable image"):
        read_image(tmp_path / "text.mp4")


def test_image_round_trip(tmp_path):
    image = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    write_image(tmp_path / "i.png", image)
    assert np.array_equal(read_image(tmp_path / "i.png"), image)
