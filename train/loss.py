"""The Diffusion-DPO loss (Wallace et al. 2023; Hallo4's recipe) and Flow-DPO (VideoAlign), pure functions of
per-sample errors.

Winner and loser share noise and timestep. With e = mean‖prediction − target‖² per sample for the policy
(θ) and the frozen reference (ref):

    inside = −β/2 · [(e_θ,w − e_θ,l) − (e_ref,w − e_ref,l)]

sigmoid: −log σ(inside); hinge: max(0, 1 − inside); ipo: (inside/β − 1/(2β))², the IPO objective on the
same log-ratio difference.

flow-dpo: Flow-DPO as VideoAlign defines it (Liu et al. 2025, "Improving Video Generation with Human
Feedback", arXiv 2501.13918, §Flow-DPO), for rectified-flow models x_t = (1 − t)·x₀ + t·ε trained on the
velocity v = ε − x₀: the errors are velocity errors and β becomes timestep-dependent,

    L = −log σ(−β_t/2 · [(‖v_w − v_θ(x_t^w)‖² − ‖v_w − v_ref(x_t^w)‖²) − (‖v_l − v_θ(x_t^l)‖² − ‖v_l − v_ref(x_t^l)‖²)]),
    β_t = β·(1 − t)²,

which is Diffusion-DPO's ε-space objective rewritten in velocity: ε̂ − ε = (1 − t)·(v̂ − v). VideoAlign report
that a constant β (β_t = β, i.e. `sigmoid` on a flow model) trains better; both are here.

Soft labels (`preference` < 1, the winner's share of the decisive vote weight, ties counted half by
`pairs build --ties half`): the conservative-DPO form (Mitchell 2023, cDPO) p·ℓ(inside) + (1 − p)·ℓ(−inside)
for sigmoid, flow-dpo and hinge, and the IPO target (p − ½)/β. p = 1 is the ordinary loss; p = ½ (a pure tie)
gives no push either way at inside = 0. Optional per-pair weights (agreement, margin, …) weigh the mean.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

DPOLoss = Literal["sigmoid", "hinge", "ipo", "flow-dpo"]
LOSSES: tuple[str, ...] = get_args(DPOLoss)


def flow_dpo_beta(beta: float, sigma: torch.Tensor) -> torch.Tensor:
    """VideoAlign's timestep-dependent KL strength β_t = β·(1 − t)² for flow noise levels t = σ ∈ (0, 1]."""
    return beta * (1.0 - sigma.float()) ** 2


def diffusion_dpo_loss(
    policy_winner: torch.Tensor,
    policy_loser: torch.Tensor,
    reference_winner: torch.Tensor,
    reference_loser: torch.Tensor,
    beta: float,
    kind: DPOLoss = "sigmoid",
    weights: torch.Tensor | None = None,
    sigma: torch.Tensor | None = None,
    preference: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(loss, metrics) for per-pair errors of shape [B]; metrics are detached means.

    `sigma` [B]: flow noise levels, needed by flow-dpo; `preference` [B]: the probability that the winner
    is better (default 1).
    """
    if kind not in LOSSES:
        raise ValueError(f"unknown DPO loss {kind!r}; choose from {', '.join(LOSSES)}")
    log_ratio = -0.5 * ((policy_winner - policy_loser) - (reference_winner - reference_loser))
    if kind == "flow-dpo":
        if sigma is None:
            raise ValueError("flow-dpo needs the flow noise level sigma of every pair")
        inside = flow_dpo_beta(beta, sigma).to(log_ratio) * log_ratio
    else:
        inside = beta * log_ratio
    p = torch.ones_like(inside) if preference is None else preference.to(inside)
    if kind in ("sigmoid", "flow-dpo"):
        losses = -p * torch.nn.functional.logsigmoid(inside) - (1 - p) * torch.nn.functional.logsigmoid(-inside)
    elif kind == "hinge":
        losses = p * torch.relu(1.0 - inside) + (1 - p) * torch.relu(1.0 + inside)
    else:
        losses = (log_ratio - (p - 0.5) / beta) ** 2
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
