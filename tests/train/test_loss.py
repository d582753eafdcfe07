import math

import pytest
import torch

from train.loss import diffusion_dpo_loss

# Two pairs, errors chosen so every quantity is easy by hand.
E = dict(policy_winner=torch.tensor([0.10, 0.30]), policy_loser=torch.tensor([0.20, 0.25]),
         reference_winner=torch.tensor([0.15, 0.20]), reference_loser=torch.tensor([0.15, 0.20]))
BETA = 10.0
# pair 1: −½·[(0.10 − 0.20) − 0] = 0.05 → inside 0.5; pair 2: −½·[(0.30 − 0.25) − 0] = −0.025 → inside −0.25
INSIDE = (0.5, -0.25)


def softplus(x):
    return math.log1p(math.exp(x))


def test_sigmoid_loss_by_hand():
    loss, metrics = diffusion_dpo_loss(**E, beta=BETA)
    expected = (softplus(-INSIDE[0]) + softplus(-INSIDE[1])) / 2  # −log σ(x) = log(1 + e^−x)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert metrics["rewards/accuracies"].item() == 0.5
    assert metrics["rewards/margins"].item() == pytest.approx((0.5 - 0.25) / 2)
    assert metrics["errors/policy_chosen"].item() == pytest.approx(0.2)


def test_hinge_ipo_and_weights_by_hand():
    hinge, _ = diffusion_dpo_loss(**E, beta=BETA, kind="hinge")
    assert hinge.item() == pytest.approx(((1 - 0.5) + (1 + 0.25)) / 2)
    ipo, _ = diffusion_dpo_loss(**E, beta=BETA, kind="ipo")
    assert ipo.item() == pytest.approx(((0.05 - 0.05) ** 2 + (-0.025 - 0.05) ** 2) / 2)
    weighted, _ = diffusion_dpo_loss(**E, beta=BETA, weights=torch.tensor([3.0, 1.0]))
    assert weighted.item() == pytest.approx((3 * softplus(-0.5) + softplus(0.25)) / 4)


def test_gradient_pushes_winner_error_down_and_loser_error_up():
    winner = torch.tensor([0.2], requires_grad=True)
    loser = torch.tensor([0.2], requires_grad=True)
    loss, _ = diffusion_dpo_loss(winner, loser, torch.tensor([0.2]), torch.tensor([0.2]), beta=5.0)
    loss.backward()
    assert winner.grad.item() > 0 and loser.grad.item() < 0
