"""Mixture-of-Adapters (MoA): the parameter-efficient adaptation inserted into the CLIP backbone.

After a transformer block, every token ``x`` is refined by a small set of bottleneck experts::

    h      = LN(x)
    g      = softmax(W_x h + W_c c)                 token-wise router, conditioned on the context c
    z_k    = GELU(D_k h)                            expert k's bottleneck (rank r)
    z_k   += DWConv3x3(z_k) on the patch grid       spatially-aware: neighbours inform each token
    x_out  = x + sum_k g_k (U_k z_k + b_k)

All experts share one fused down-projection and one fused up-projection (two dense matmuls for
every expert at once), which is what keeps the module cheap. The up-projections start at zero,
so an untrained MoA is the identity and the model starts as the pretrained backbone.

With one expert there is nothing to route: the module is a plain bottleneck adapter
(``x + U GELU(D LN(x)) + b``) without router parameters, the single-adapter ablation.

The router regulariser (returned next to the tokens, weighted by the model) is either
``load_balance`` (experts share the tokens equally), ``entropy`` (each token's gates are confident)
or ``none``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

REGULARIZERS = ("load_balance", "entropy", "none")


class MixtureOfAdapters(nn.Module):
    def __init__(
        self,
        width: int,
        num_experts: int = 4,
        rank: int = 64,
        context_dim: int | None = None,
        spatial_kernel: int = 3,
        zero_init: bool = True,
        regularizer: str = "load_balance",
    ) -> None:
        super().__init__()
        if num_experts < 1 or rank < 1:
            raise ValueError(f"MoA needs num_experts >= 1 and rank >= 1, got {num_experts} and {rank}")
        if regularizer not in REGULARIZERS:
            raise ValueError(f"router regularizer must be one of {REGULARIZERS}, got {regularizer!r}")
        self.num_experts = num_experts
        self.rank = rank
        self.regularizer = regularizer
        self.norm = nn.LayerNorm(width)
        self.down = nn.Linear(width, num_experts * rank)
        self.spatial = (
            nn.Conv2d(
                num_experts * rank,
                num_experts * rank,
                spatial_kernel,
                padding=spatial_kernel // 2,
                groups=num_experts * rank,
            )
            if spatial_kernel > 0
            else None
        )
        self.up = nn.Linear(num_experts * rank, width, bias=False)
        self.expert_bias = nn.Parameter(torch.zeros(num_experts, width))
        routed = num_experts > 1
        self.router_token = nn.Linear(width, num_experts) if routed else None
        self.router_context = (
            nn.Linear(context_dim, num_experts, bias=False) if (routed and context_dim) else None
        )
        # Equal routing at start; the zero up-projection makes the whole module an identity.
        if self.router_token is not None:
            nn.init.zeros_(self.router_token.weight)
            nn.init.zeros_(self.router_token.bias)
        if self.router_context is not None:
            nn.init.zeros_(self.router_context.weight)
        if self.spatial is not None:
            nn.init.zeros_(self.spatial.weight)
            nn.init.zeros_(self.spatial.bias)
        if zero_init:
            nn.init.zeros_(self.up.weight)

    def forward(
        self, tokens: torch.Tensor, context: torch.Tensor | None, grid: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Refine ``tokens`` (B, 1 + h*w, D); returns the new tokens and the router regulariser
        (unweighted; 0 for a single adapter or ``regularizer="none"``).

        ``context`` is (B, C) or None and ``grid`` the (h, w) patch grid (token 0 is CLS).
        """
        hidden = self.norm(tokens)
        bottleneck = F.gelu(self.down(hidden))  # (B, T, K*r)
        if self.spatial is not None:
            bottleneck = self._mix_neighbours(bottleneck, grid)
        if self.router_token is None:  # one expert: a plain adapter
            return tokens + self.up(bottleneck) + self.expert_bias[0], tokens.new_zeros(())

        router_logits = self.router_token(hidden)
        if self.router_context is not None and context is not None:
            router_logits = router_logits + self.router_context(context).unsqueeze(1)
        gates = router_logits.softmax(dim=-1)  # (B, T, K)
        batch, length, _ = bottleneck.shape
        gated = bottleneck.view(batch, length, self.num_experts, self.rank) * gates.unsqueeze(-1)
        update = self.up(gated.reshape(batch, length, -1)) + gates @ self.expert_bias
        return tokens + update, self.router_loss(gates)

    def router_loss(self, gates: torch.Tensor) -> torch.Tensor:
        """The configured regulariser of the gates (B, T, K)."""
        if self.regularizer == "load_balance":
            return self.load_balance_loss(gates)
        if self.regularizer == "entropy":
            return self.entropy_loss(gates)
        return gates.new_zeros(())

    def _mix_neighbours(self, bottleneck: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Depthwise conv over the patch grid (CLS token untouched): spatially-aware experts."""
        cls_token, patches = bottleneck[:, :1], bottleneck[:, 1:]
        # (B, h*w, C) viewed as (B, C, h, w) with channels-last strides: no copy on the way in or
        # out, and the depthwise convolution runs on that layout directly.
        image = patches.unflatten(1, grid).permute(0, 3, 1, 2)
        mixed = self.spatial(image).permute(0, 2, 3, 1).flatten(1, 2)
        return torch.cat([cls_token, patches + mixed], dim=1)

    def load_balance_loss(self, gates: torch.Tensor) -> torch.Tensor:
        """``K * sum_k mean(g_k)^2 - 1``: zero when experts share tokens equally, up to K-1 on collapse."""
        usage = gates.float().mean(dim=(0, 1))
        return self.num_experts * (usage * usage).sum() - 1.0

    def entropy_loss(self, gates: torch.Tensor) -> torch.Tensor:
        """Mean entropy of each token's gates over ``log K``: 1 for uniform gates, 0 for one-hot."""
        probabilities = gates.float()
        entropy = -(probabilities * probabilities.clamp_min(1e-9).log()).sum(dim=-1)
        return entropy.mean() / math.log(self.num_experts)
