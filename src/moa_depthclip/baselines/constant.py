"""The constant-depth floor: predict the median training depth everywhere.

Any model worth reporting must beat it; it also tests the evaluation pipeline end to end without
weights.
"""

from __future__ import annotations

import numpy as np
import torch

from moa_depthclip.model.contract import PretrainedDepthModel
from moa_depthclip.model.outputs import DepthOutput


class ConstantDepth(PretrainedDepthModel, tags=["baseline"]):
    """Returns ``value`` metres at every pixel of every image (the model contract, no parameters;
    ``save_pretrained`` records the value in config.json and the weights file)."""

    #: ``model_type`` in config.json: how the loader tells this folder from other saved models.
    MODEL_TYPE = "constant-depth"

    def __init__(self, value: float, *, model_type: str = MODEL_TYPE) -> None:
        super().__init__()
        if not (value > 0 and np.isfinite(value)):
            raise ValueError(f"constant depth must be positive and finite, got {value}")
        self.register_buffer("value", torch.tensor(float(value)))
        self._hub_mixin_config = {"value": float(value), "model_type": self.MODEL_TYPE}

    def forward(self, images: torch.Tensor) -> DepthOutput:
        batch, _, height, width = images.shape
        depth = self.value.to(images.dtype).expand(batch, 1, height, width).clone()
        return DepthOutput(depth=depth, aux_loss=images.new_zeros(()))

    def extra_repr(self) -> str:
        return f"value={float(self.value):.4f} m"
