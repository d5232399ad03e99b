"""Momentum-SAM (Becker, Altrock, Risse, 2024): perturb along the momentum buffer, one gradient per step.

    w̃_t = w_t − ρ v_t/‖v_t‖,   g_t = ∇L(w̃_t),   v_{t+1} = μ v_t + g_t,   w_{t+1} = w_t − η v_{t+1}

(the paper's Algorithm 1, motivated by Nesterov's look-ahead; v_0 = 0, so the first step is plain SGD).
In the torch shell (`make_optimizer("msam", …)`) v is the base optimizer's own buffer — SGD's
`momentum_buffer` (weight decay included, as torch accumulates it), Adam's `exp_avg` — read after each
step, which is the paper's update exactly. Where there is no such buffer (plain SGD without momentum,
and the labs' runners, which keep their momentum to themselves) the rule keeps v ← β v + d itself, β the
`beta` hyperparameter: set it to the lab's momentum for the paper's MSAM. Stateful: eager only.
"""

import torch

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import _b, global_norm


def lookahead(s):
    v = s.state.get("v")
    if v is None:
        return [torch.zeros_like(x) for x in s.w]
    n = global_norm(v, s.bd)
    pos = n > 0
    inv = torch.where(pos, 1.0 / torch.where(pos, n, torch.ones_like(n)), torch.zeros_like(n))  # v = 0: no move
    return [-_b(s.hp["rho"] * inv, x, s.bd) * x for x in v]


def after_step(state: dict, d, hp: dict, bd: int, buffers=None) -> None:
    if buffers is not None:
        state["v"] = [b.detach().clone() for b in buffers]
        return
    v = state.get("v")
    beta = hp["beta"]
    state["v"] = [x.clone() for x in d] if v is None else [_b(beta, x, bd) * vi + x for vi, x in zip(v, d)]


SPEC = VariantSpec(
    name="msam",
    label="Momentum-SAM (MSAM)",
    passes=1,
    summary="Perturb against the momentum direction (a free look-ahead), one gradient evaluation per step.",
    formula=(r"\tilde w = w - \rho\frac{v}{\|v\|},\quad d = \nabla L(\tilde w),\quad v \leftarrow \mu v + d"),
    reference=(
        "Becker, Altrock, Risse. Momentum-SAM: Sharpness Aware Minimization without Computational Overhead. arXiv 2024"
    ),
    url="https://arxiv.org/abs/2401.12033",
    hparams={
        "rho": rho_param(0.3),
        "beta": HParam(
            "beta",
            0.9,
            low=0.0,
            high=0.999,
            symbol=r"\mu",
            help="momentum of v where the base optimizer keeps no buffer (the labs): use the lab's momentum",
        ),
    },
    note="One pass: the loss and gradient reported are at the perturbed point w̃. Stateful: eager only.",
    lookahead=lookahead,
    after_step=after_step,
    stateful=True,
)
