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


def test_flow_dpo_weighs_each_pair_by_beta_t():
    sigma = torch.tensor([0.2, 0.6])  # β_t = β(1 − σ)²: 10·0.64 = 6.4 and 10·0.16 = 1.6
    loss, metrics = diffusion_dpo_loss(**E, beta=BETA, kind="flow-dpo", sigma=sigma)
    inside = (6.4 * 0.05, 1.6 * -0.025)
    assert loss.item() == pytest.approx((softplus(-inside[0]) + softplus(-inside[1])) / 2, rel=1e-6)
    assert metrics["rewards/margins"].item() == pytest.approx(sum(inside) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        diffusion_dpo_loss(**E, beta=BETA, kind="flow-dpo")


def test_vote_share_labels_by_hand():
    p = torch.tensor([0.75, 0.5])
    soft, _ = diffusion_dpo_loss(**E, beta=BETA, preference=p)
    expected = (0.75 * softplus(-0.5) + 0.25 * softplus(0.5) + 0.5 * softplus(0.25) + 0.5 * softplus(-0.25)) / 2
    assert soft.item() == pytest.approx(expected, rel=1e-6)
    hard, _ = diffusion_dpo_loss(**E, beta=BETA, preference=torch.ones(2))
    assert hard.item() == pytest.approx(diffusion_dpo_loss(**E, beta=BETA)[0].item())
    ipo, _ = diffusion_dpo_loss(**E, beta=BETA, kind="ipo", preference=p)  # target (p − ½)/β
    assert ipo.item() == pytest.approx(((0.05 - 0.025) ** 2 + (-0.025 - 0.0) ** 2) / 2)
    hinge, _ = diffusion_dpo_loss(**E, beta=BETA, kind="hinge", preference=p)
    assert hinge.item() == pytest.approx((0.75 * 0.5 + 0.25 * 1.5 + 0.5 * 1.25 + 0.5 * 0.75) / 2)


def test_a_tie_pushes_neither_way():
    winner = torch.tensor([0.2], requires_grad=True)
    loss, _ = diffusion_dpo_loss(winner, torch.tensor([0.2]), torch.tensor([0.2]), torch.tensor([0.2]), beta=5.0,
                                 preference=torch.tensor([0.5]))
    loss.backward()
    assert winner.grad.item() == pytest.approx(0.0, abs=1e-7)
