"""Fixtures shared by every test: a tiny rendered world and campaigns made from it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from world.build import build_world  # noqa: E402
from model_families.embedded.denoiser import PortraitDenoiser  # noqa: E402
from model_families.embedded.family import EmbeddedFamily  # noqa: E402
from model_families.targets import training_scheduler  # noqa: E402

TINY = dict(conditions=2, seed=3, size=64, seconds=1.2)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """A rendered world of 2 conditions × (in-sync + 3 degraded) clips at 64 px; returns its manifest."""
    out = tmp_path_factory.mktemp("world")
    return build_world(out, **TINY)


@pytest.fixture
def world_copy(tiny_world, tmp_path) -> Path:
    """A private copy of the tiny world that a test may damage; returns its manifest."""
    shutil.copytree(tiny_world.parent, tmp_path / "world")
    return tmp_path / "world" / "manifest.csv"


def tiny_denoiser() -> PortraitDenoiser:
    """The embedded architecture at toy width (32 px frames), same seed every time."""
    torch.manual_seed(0)
    return PortraitDenoiser(channels=(16, 32), token_dim=16, sample_size=32)


@pytest.fixture
def tiny_model_dir(tmp_path) -> Path:
    """A saved embedded-model folder holding an untrained tiny denoiser."""
    EmbeddedFamily(tiny_denoiser(), training_scheduler("v_prediction")).save(tmp_path / "model", "# tiny\n")
    return tmp_path / "model"
