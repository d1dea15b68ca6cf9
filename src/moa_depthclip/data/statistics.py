"""Statistics of a depth dataset that training and the floors start from.

``median_valid_depth`` is the constant floor's value and the depth the hybrid head starts at, so it
lives with the data rather than with either of them.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from moa_depthclip.data.validity import valid_depth_mask


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
