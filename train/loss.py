"""The Diffusion-DPO loss (Wallace et al. 2023; Hallo4's recipe), a pure function of per-sample errors.

Winner and loser share noise and timestep. With e = mean‖prediction − target‖² per sample for the policy
(θ) and the frozen reference (ref):

    inside = −β/2 · [(e_θ,w − e_θ,l) − (e_ref,w − e_ref,l)]

sigmoid: −log σ(inside); hinge: max(0, 1 − inside); ipo: (inside/β − 1/(2β))², the IPO objective on the
same log-ratio difference. Optional per-pair weights (agreement, margin, …) weigh the mean.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

DPOLoss = Literal["sigmoid", "hinge", "ipo"]
LOSSES: tuple[str, ...] = get_args(DPOLoss)


def diffusion_dpo_loss(
    policy_winner: torch.Tensor,
    policy_loser: torch.Tensor,
    reference_winner: torch.Tensor,
    reference_loser: torch.Tensor,
    beta: float,
    kind: DPOLoss = "sigmoid",
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, metrics) for per-pair errors of shape [B]; metrics are detached means."""
    if kind not in LOSSES:
        raise ValueError(f"unknown DPO loss {kind!r}; choose from {', '.join(LOSSES)}")
    log_ratio = -0.5 * ((policy_winner - policy_loser) - (reference_winner - reference_loser))
    inside = beta * log_ratio
    if kind == "sigmoid":
        losses = -torch.nn.functional.logsigmoid(inside)
    elif kind == "hinge":
        losses = torch.relu(1.0 - inside)
    else:
        losses = (log_ratio - 1.0 / (2.0 * beta)) ** 2
    if weights is None:
        loss = losses.mean()
    else:
        loss = (losses * weights).sum() / weights.sum().clamp_min(1e-12)
    metrics = {
        "loss": loss.detach(),
        "rewards/accuracies": (inside > 0).float().mean().detach(),
        "rewards/margins": inside.mean().detach(),
        "errors/policy_chosen": policy_winner.mean().detach(),
        "errors/policy_rejected": policy_loser.mean().detach(),
        "errors/reference_chosen": reference_winner.mean().detach(),
        "errors/reference_rejected": reference_loser.mean().detach(),
    }
    return loss, metrics
