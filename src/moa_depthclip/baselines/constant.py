"""The constant-depth floor: predict the median training depth everywhere.

Any model worth reporting must beat it; it also tests the evaluation pipeline end to end without
weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from moa_depthclip.data.validity import valid_depth_mask
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


def median_valid_depth(
    dataset: Dataset,
    max_images: int = 200,
    pixels_per_image: int = 20000,
    max_depth: float | None = None,
    seed: int = 0,
) -> float:
    """Median of valid (> 0, finite, optionally < ``max_depth``) ground-truth depth over a subsample.

    Uses up to ``max_images`` images spread evenly over the dataset and at most ``pixels_per_image``
    random valid pixels from each, so that memory stays bounded on large sets; the median of such a
    sample is within a few millimetres of the full-set median for NYU-like data.
    """
    total = len(dataset)
    if total == 0:
        raise ValueError("cannot compute a median depth over an empty dataset")
    indices = np.unique(np.linspace(0, total - 1, num=min(max_images, total)).round().astype(int))
    rng = np.random.default_rng(seed)
    values = []
    for index in indices:
        depth = dataset[int(index)]["depth"].numpy().reshape(-1)
        valid = depth[valid_depth_mask(depth, 0.0, max_depth)]
        if len(valid) > pixels_per_image:
            valid = rng.choice(valid, size=pixels_per_image, replace=False)
        values.append(valid)
    pooled = np.concatenate(values) if values else np.zeros(0)
    if pooled.size == 0:
        raise ValueError("no valid depth pixel in the sampled images")
    return float(np.median(pooled))
