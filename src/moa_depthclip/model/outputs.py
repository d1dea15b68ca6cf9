"""What every depth model in this package returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DepthOutput:
    """Model output. ``depth`` is always set; the other fields are filled by models that have them.

    depth:        (B, 1, H, W) metric depth in metres at the input resolution, positive and finite.
    depth_bins:   (B, 1, H, W) expected depth under the bin classifier (hybrid head only).
    depth_reg:    (B, 1, H, W) direct regression output (hybrid head only).
    bin_logits:   (B, n_bins, h, w) classifier logits at the decoder resolution.
    bin_centers:  (n_bins,) depth of each bin in metres.
    aux_loss:     scalar MoA load-balancing loss (0 when the model has none).
    """

    depth: torch.Tensor
    depth_bins: torch.Tensor | None = None
    depth_reg: torch.Tensor | None = None
    bin_logits: torch.Tensor | None = None
    bin_centers: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None
