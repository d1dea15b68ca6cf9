"""AdamW over the model's parameter groups and the warm-up + cosine learning-rate schedule.

The new modules (MoA, context projection, decoder, heads) start from scratch and take ``lr``; the
unfrozen CLIP blocks already hold good features and take the smaller ``backbone_lr``. Norms and
biases get no weight decay.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from moa_depthclip.training.config import OptimConfig


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW with one group per (model group, decay or not); each group is named for logging."""
    groups = []
    for name, params in model.parameter_groups().items():
        lr = config.backbone_lr if name == "backbone_blocks" else config.lr
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        for suffix, members, weight_decay in (("", decay, config.weight_decay), ("_no_decay", no_decay, 0.0)):
            if members:
                groups.append(
                    {"params": members, "lr": lr, "weight_decay": weight_decay, "name": name + suffix}
                )
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas), eps=config.eps)


def lr_factor(step: int, total_steps: int, config: OptimConfig) -> float:
    """Multiplier of every group's base learning rate at optimizer step ``step`` (0-based).

    Linear warm-up from ~0 to 1 over ``warmup_steps``, then cosine decay to ``min_lr_ratio`` at
    ``total_steps`` (or constant).
    """
    warmup = max(0, min(config.warmup_steps, total_steps - 1))
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if config.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, config: OptimConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, config))
