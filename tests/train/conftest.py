import pytest
import torch

from train.model import PortraitDenoiser
from train.pipeline import EmbeddedPipeline
from train.targets import training_scheduler


def tiny_denoiser() -> PortraitDenoiser:
    torch.manual_seed(0)
    return PortraitDenoiser(channels=(16, 32), token_dim=16, sample_size=32)


@pytest.fixture
def tiny_model_dir(tmp_path):
    """A saved embedded-model folder with a tiny, untrained denoiser (32 px)."""
    EmbeddedPipeline(tiny_denoiser(), training_scheduler("v_prediction")).save(tmp_path / "model", "# tiny\n")
    return tmp_path / "model"
