"""Which ground-truth pixels hold a usable depth: the one definition every layer uses.

Datasets mark missing depth with 0 (and sometimes NaN or inf); the evaluation additionally keeps
only depths inside the protocol's range, and the training losses ignore depths at or below a small
floor. All of them are ``valid_depth_mask`` with different bounds, so "valid" means one thing.
"""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray


def valid_depth_mask(
    depth: ArrayLike, min_depth: float = 0.0, max_depth: float | None = None
) -> ArrayLike:
    """Boolean mask of pixels with a finite depth ``min_depth < d`` (and ``d < max_depth`` if given).

    Works on torch tensors (any shape and device) and numpy arrays; returns the same kind.
    ``min_depth=0`` is the dataset meaning (0 = no measurement); the evaluation protocols use
    ``(1e-3, max)``; the training losses use ``min_depth=1e-3`` without an upper bound.
    """
    if isinstance(depth, torch.Tensor):
        valid = torch.isfinite(depth) & (depth > min_depth)
        if max_depth is not None:
            valid = valid & (depth < max_depth)
        return valid
    values = np.asarray(depth)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(values) & (values > min_depth)
        if max_depth is not None:
            valid &= values < max_depth
    return valid
