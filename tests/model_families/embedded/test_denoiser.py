import json

import numpy as np
import pytest
import torch

from tests.conftest import tiny_denoiser
from train.config import PretrainConfig
from model_families.embedded.latents import frames_to_tensor, patchify
from model_families.embedded.family import EmbeddedFamily
from train.pretrain import pretrain
from model_families.targets import PREDICTION_TYPES, model_timestep, noisy_and_target, training_scheduler
from train.world_data import generated_clips


def test_save_load_round_trip_gives_identical_samples(tiny_model_dir):
    a, b = EmbeddedFamily.load(tiny_model_dir), EmbeddedFamily.load(tiny_model_dir)
    reference = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    motion = np.random.default_rng(1).normal(size=(1, 8, 131)).astype(np.float32)
    first = a.sample_motion(reference, motion, [7], steps=3)
    assert first.shape == (1, 8, 32, 32, 3)
    assert np.array_equal(first, b.sample_motion(reference, motion, [7], steps=3))
    assert not np.array_equal(first, b.sample_motion(reference, motion, [8], steps=3))
    assert a.version == b.version and len(a.version) == 12


def test_motion_injection_starts_at_zero():
    model = tiny_denoiser()
    x = torch.randn(1, 2, 192, 8, 8)
    ref = torch.randn(1, 48, 8, 8)
    t = torch.tensor([500])
    with torch.no_grad():
        assert torch.equal(model(x, t, ref, torch.randn(1, 8, 131)), model(x, t, ref, torch.zeros(1, 8, 131)))


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_training_steps_lower_the_loss_on_a_fixed_batch(prediction_type):
    clips = generated_clips(2, seed=1, size=32, seconds=0.4)
    model, scheduler = tiny_denoiser(), training_scheduler(prediction_type)
    x0 = patchify(frames_to_tensor(clips.frames[:, :8]), 4, 4)
    ref = patchify(frames_to_tensor(clips.references[:, None]), 1, 4)[:, 0]
    motion = torch.from_numpy(clips.motion[:, :8])
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(x0.shape, generator=generator)
    timesteps = torch.tensor([300, 700])
    noisy, target = noisy_and_target(scheduler, x0, noise, timesteps)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss():
        return torch.nn.functional.mse_loss(model(noisy, model_timestep(scheduler, timesteps), ref, motion), target)

    first = loss().item()
    for _ in range(30):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    last = loss().item()
    print(prediction_type, first, last)
    assert last < 0.6 * first


def test_flow_target_is_velocity_noise_minus_data():
    scheduler = training_scheduler("flow")
    x0, noise = torch.ones(1, 3), torch.zeros(1, 3)
    noisy, target = noisy_and_target(scheduler, x0, noise, torch.tensor([499]))
    assert torch.allclose(noisy, torch.full((1, 3), 0.5))
    assert torch.equal(target, noise - x0)


def test_pretrain_resume_continues_the_same_run(tmp_path, monkeypatch):
    monkeypatch.setattr("train.pretrain.PortraitDenoiser", lambda **kw: tiny_denoiser())
    common = dict(conditions=2, seconds=0.8, batch_size=2, window=8, checkpoint_every=2, size=32)
    pretrain(PretrainConfig(out=tmp_path / "straight", steps=4, **common))
    pretrain(PretrainConfig(out=tmp_path / "resumed", steps=2, **common))
    pretrain(PretrainConfig(out=tmp_path / "resumed", steps=4, resume=True, **common))

    def losses(run):
        return [json.loads(line)["loss"] for line in (tmp_path / run / "train_log.jsonl").read_text().splitlines()]

    assert len(losses("straight")) == 4
    assert losses("resumed") == pytest.approx(losses("straight"), rel=1e-5)
    card = (tmp_path / "resumed" / "model_card.md").read_text()
    assert "- steps: 4 (this invocation ran 2" in card and "final loss" in card
    assert EmbeddedFamily.load(tmp_path / "resumed").size == 32
