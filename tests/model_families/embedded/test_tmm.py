import numpy as np
import torch

from model_families.embedded.latents import frames_to_tensor, patchify, tensor_to_frames, unpatchify
from model_families.embedded.denoiser import MotionTokens
from model_families.embedded.motion_features import feature_dim, motion_features, redistribute, undistribute


def test_temporal_channel_redistribution_shapes_and_exact_inverse():
    features = torch.randn(2, 16, 131)
    grouped = redistribute(features, rho=4)
    assert grouped.shape == (2, 4, 4 * 131)
    # latent frame 1 holds video frames 4..7, in order, in its channels
    assert torch.equal(grouped[1, 1, 131:262], features[1, 5])
    assert torch.equal(undistribute(grouped, rho=4), features)


def test_proportional_feature_expansion_gives_rho_tokens_per_latent_frame():
    tokens = MotionTokens(rho=4, feature_dim=131, token_dim=32)(torch.randn(3, 5, 4 * 131))
    assert tokens.shape == (3 * 5, 4, 32)


def test_space_time_patchify_inverts_exactly():
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 64, 64, 3), dtype=np.uint8)
    video = frames_to_tensor(frames)
    latents = patchify(video, rho=4, patch=4)
    assert latents.shape == (2, 2, 4 * 3 * 16, 16, 16)
    assert torch.equal(unpatchify(latents, rho=4, patch=4), video)
    assert np.array_equal(tensor_to_frames(unpatchify(latents, 4, 4)), frames)


def test_motion_features_follow_audio_and_pose():
    audio = np.zeros(16000, np.float32)
    audio[8000:12000] = 0.5 * np.sin(np.arange(4000) * 0.3)
    pose = np.zeros((25, 3), np.float32)
    pose[:, 0] = 0.1
    features = motion_features(audio, pose, 25.0, 25)
    assert features.shape == (25, feature_dim())
    loud = features[13:17, :-3].mean()
    quiet = features[2:6, :-3].mean()
    assert loud > quiet + 0.5
    assert np.allclose(features[:, -3], 0.5)
