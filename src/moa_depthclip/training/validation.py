"""Validation during training: metrics through the shared evaluation code path."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset


def get_protocol(name: str) -> Any:
    from moa_depthclip.evaluation.protocol import PROTOCOLS

    if name not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {name!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]()


@torch.no_grad()
def validate(
    model: nn.Module, dataset: Dataset, protocol_name: str, device: torch.device
) -> dict[str, float]:
    """Mean metrics of ``model`` over ``dataset`` (per image, then averaged over images).

    Uses ``moa_depthclip.evaluation.runner.evaluate`` so that training curves and results tables
    agree; restores the model's train/eval mode afterwards.
    """
    from moa_depthclip.evaluation.runner import evaluate

    was_training = model.training
    model.eval()
    try:
        result = evaluate(model, dataset, get_protocol(protocol_name), device=device, progress=False)
    finally:
        model.train(was_training)
    return {name: float(value) for name, value in result.mean.items()}
