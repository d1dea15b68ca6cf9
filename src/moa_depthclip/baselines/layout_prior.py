"""The layout-prior floor: the training set's mean depth at every pixel position, whatever the image.

In rooms seen from eye height the floor is near at the bottom of the picture and the ceiling at the
top, so depth depends on the pixel's position alone more than a constant does. A model that reads
the image must beat this map, not only the constant: it is what a network learns first when it
does not yet use the image content.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from moa_depthclip.model.contract import PretrainedDepthModel
from moa_depthclip.model.outputs import DepthOutput


class LayoutPriorDepth(PretrainedDepthModel, tags=["baseline"]):
    """Predicts a fixed (H, W) depth map, resized (bilinear) to each input's size.

    ``LayoutPriorDepth(depth_map)`` builds it; ``from_pretrained`` rebuilds an empty map of the saved
    ``size`` (config.json) and fills it from the weights file.
    """

    #: ``model_type`` in config.json: how the loader tells this folder from other saved models.
    MODEL_TYPE = "layout-prior"

    def __init__(
        self,
        depth_map: torch.Tensor | None = None,
        *,
        size: tuple[int, int] | None = None,
        model_type: str = MODEL_TYPE,
    ) -> None:
        super().__init__()
        if depth_map is None:
            if size is None or len(size) != 2 or min(size) <= 0:
                raise ValueError("the layout prior needs a depth map, or the (H, W) size of one to load")
            depth_map = torch.ones(int(size[0]), int(size[1]))
        depth_map = torch.as_tensor(depth_map, dtype=torch.float32)
        if depth_map.ndim != 2 or not torch.isfinite(depth_map).all() or not (depth_map > 0).all():
            raise ValueError("the layout prior must be a 2-D map of positive, finite depths")
        self.register_buffer("depth_map", depth_map)
        # config.json records the map's size, not the map (that is in the weights file).
        self._hub_mixin_config = {"size": list(depth_map.shape), "model_type": self.MODEL_TYPE}

    def forward(self, images: torch.Tensor) -> DepthOutput:
        batch, _, height, width = images.shape
        depth = F.interpolate(
            self.depth_map[None, None], size=(height, width), mode="bilinear", align_corners=False
        )
        return DepthOutput(
            depth=depth.to(images.dtype).expand(batch, -1, -1, -1).clone(), aux_loss=images.new_zeros(())
        )


def mean_depth_map(dataset: Dataset, max_images: int = 200, max_depth: float | None = None) -> torch.Tensor:
    """Per-pixel geometric mean of valid depth over up to ``max_images`` images spread over the set.

    All images must share one size (true of the synthetic scenes and of NYU). Pixels never valid
    take the median of the map, so the prior is defined everywhere.
    """
    total = len(dataset)
    if total == 0:
        raise ValueError("cannot compute a depth map over an empty dataset")
    indices = np.unique(np.linspace(0, total - 1, num=min(max_images, total)).round().astype(int))
    log_sum: torch.Tensor | None = None
    count: torch.Tensor | None = None
    for index in indices:
        depth = dataset[int(index)]["depth"][0].double()
        valid = torch.isfinite(depth) & (depth > 0)
        if max_depth is not None:
            valid &= depth < max_depth
        if log_sum is None:
            log_sum, count = torch.zeros_like(depth), torch.zeros_like(depth)
        elif depth.shape != log_sum.shape:
            raise ValueError(
                f"image {index} has depth of size {tuple(depth.shape)}, not {tuple(log_sum.shape)}"
            )
        log_sum += torch.where(valid, depth.clamp(min=1e-6).log(), torch.zeros_like(depth))
        count += valid.double()
    seen = count > 0
    if not seen.any():
        raise ValueError("no valid depth in the dataset")
    mean = torch.where(seen, (log_sum / count.clamp(min=1)).exp(), torch.zeros_like(log_sum))
    mean[~seen] = mean[seen].median()
    return mean.float()
