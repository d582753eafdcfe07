"""`train syncnet`: the contrastive loss, and a tiny run whose folder the scorer loads."""

import pytest
import torch
from typer.testing import CliRunner

from syncnet.networks import load_syncnet
from train.cli import app
from train.syncnet_training import contrastive_loss


def test_contrastive_loss_by_hand():
    lip = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    aud = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # distances 5 and 1
    label = torch.tensor([1.0, 0.0])  # in sync: 5² = 25; shifted: max(2 − 1, 0)² = 1
    assert contrastive_loss(lip, aud, label, margin=2.0).item() == pytest.approx((25 + 1) / 2, rel=1e-4)


def test_a_tiny_run_saves_weights_the_scorer_loads(tmp_path):
    out = tmp_path / "syncnet"
    result = CliRunner().invoke(app, ["syncnet", "--out", str(out), "--conditions", "2", "--seconds", "1.2",
                                      "--steps", "3", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert (out / "train_log.jsonl").read_text().count("\n") == 3
    weights = load_syncnet(out)
    assert weights.crop == 64 and weights.name.startswith("embedded-syncnet:")
