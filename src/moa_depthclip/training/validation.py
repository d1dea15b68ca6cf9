"""Validation during training: metrics through the shared evaluation code path.

The evaluation protocol named by ``data.val_protocol`` decides everything the numbers depend on,
including what the model is fed: its input region and resolution (e.g. 224x224 for
``nyu-adadepthclip``, the 416x544 region for ``nyu-depthclip``, the whole frame for ``nyu``). So
validation curves are measured exactly as the final results table will be, not at whatever size the
training crops happen to have.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from moa_depthclip.evaluation.protocol import get_protocol

__all__ = ["get_protocol", "validate"]


@torch.no_grad()
def validate(
    model: nn.Module, dataset: Dataset, protocol_name: str, device: torch.device
) -> dict[str, float]:
    """Mean metrics of ``model`` over ``dataset`` under protocol ``protocol_name``.

    Uses ``moa_depthclip.evaluation.runner.evaluate`` (the protocol's model input, the package's
    prediction path, the protocol's scoring) so that training curves and results tables agree;
    restores the model's train/eval mode afterwards.
    """
    from moa_depthclip.evaluation.runner import evaluate

    protocol = get_protocol(protocol_name)
    was_training = model.training
    model.eval()
    try:
        result = evaluate(model, dataset, protocol, device=device, progress=False)
    finally:
        model.train(was_training)
    return {name: float(value) for name, value in result.mean.items()}
