"""The hybrid prediction head: classification over fixed depth bins plus direct regression.

* bins:       ``num_bins`` fixed centres over [min_depth, max_depth] (linear or log spacing);
              d_cls = sum softmax(logits) * centres, the expected depth under the classifier.
* regression: d_reg = min + (max - min) * sigmoid(r), bounded to the same range.
* blend:      d = a * d_cls + (1 - a) * d_reg, with ``a`` a learned per-pixel gate (or a constant;
              1 for the ``bins`` ablation, 0 for ``regression``).

Both partial depths and the logits stay available for the composite loss and for ablations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from moa_depthclip.config import HeadConfig


def bin_edges(config: HeadConfig) -> torch.Tensor:
    """(num_bins + 1,) edges; centres are the midpoints (in log space for log spacing)."""
    if config.bin_spacing == "linear":
        return torch.linspace(config.min_depth, config.max_depth, config.num_bins + 1)
    if config.bin_spacing == "log":
        return torch.logspace(math.log10(config.min_depth), math.log10(config.max_depth), config.num_bins + 1)
    raise ValueError(f"bin_spacing must be 'linear' or 'log', got {config.bin_spacing!r}")


def bin_centers(config: HeadConfig) -> torch.Tensor:
    edges = bin_edges(config)
    if config.bin_spacing == "log":
        return torch.sqrt(edges[:-1] * edges[1:])
    return 0.5 * (edges[:-1] + edges[1:])


class HybridDepthHead(nn.Module):
    def __init__(self, in_channels: int, config: HeadConfig) -> None:
        super().__init__()
        if config.blend not in ("learned", "fixed", "bins", "regression"):
            raise ValueError(f"head blend must be learned, fixed, bins or regression, got {config.blend!r}")
        self.config = config
        self.register_buffer("centers", bin_centers(config), persistent=False)
        self.register_buffer("edges", bin_edges(config), persistent=False)
        self.classifier = nn.Conv2d(in_channels, config.num_bins, kernel_size=1)
        self.regressor = nn.Conv2d(in_channels, 1, kernel_size=1)
        self.gate = nn.Conv2d(in_channels, 1, kernel_size=1) if config.blend == "learned" else None
        # Single-branch ablations: the unused branch is frozen (not counted as trained) and reads
        # detached features, so no loss term on it can train the decoder through it.
        self.branch_weight = {"fixed": config.fixed_blend_weight, "bins": 1.0, "regression": 0.0}.get(
            config.blend
        )
        unused = {"bins": self.regressor, "regression": self.classifier}.get(config.blend)
        if unused is not None:
            unused.requires_grad_(False)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        # The bin classifier runs on a channels-last view: the softmax over bins and the expected
        # depth then read contiguous memory (about half the cost of a softmax over dim 1 of NCHW
        # logits, which dominated the model's cost beyond the backbone at high resolution and
        # batch). Same weights as the 1x1 convolution; ``bin_logits`` is returned as a
        # (B, n_bins, h, w) view of the channels-last result.
        pixels = features.permute(0, 2, 3, 1)
        if self.config.blend == "regression":
            pixels = pixels.detach()
        logits_last = F.linear(pixels, self.classifier.weight.flatten(1), self.classifier.bias)
        depth_bins = (logits_last.softmax(dim=-1) @ self.centers).unsqueeze(1)
        logits = logits_last.permute(0, 3, 1, 2)
        span = self.config.max_depth - self.config.min_depth
        reg_in = features.detach() if self.config.blend == "bins" else features
        depth_reg = self.config.min_depth + span * torch.sigmoid(self.regressor(reg_in))
        if self.gate is not None:
            weight = torch.sigmoid(self.gate(features))
        else:
            weight = torch.full_like(depth_reg, self.branch_weight)
        depth = weight * depth_bins + (1.0 - weight) * depth_reg
        return {"depth": depth, "depth_bins": depth_bins, "depth_reg": depth_reg, "bin_logits": logits}

    @torch.no_grad()
    def set_depth_prior(self, depth: float, spread: float = 1.0) -> None:
        """Start both branches at a typical depth (e.g. the median of the training set).

        Untrained, the head predicts the middle of the range (5 m for 0-10 m). Adam moves a bias by
        at most about the learning rate per step, so walking the outputs to the data's typical
        depth would take hundreds of steps; starting there means training spends its steps on
        structure instead. Classifier biases become a Gaussian over the bins around ``depth``
        (``spread`` metres wide), the regression bias its sigmoid inverse.
        """
        low, high = self.config.min_depth, self.config.max_depth
        depth = min(max(depth, low + 1e-3 * (high - low)), high - 1e-3 * (high - low))
        prior = -0.5 * ((self.centers - depth) / spread) ** 2
        self.classifier.bias.copy_(prior - prior.max())
        fraction = torch.tensor((depth - low) / (high - low))
        self.regressor.bias.fill_(torch.logit(fraction).item())

    def bin_index(self, depth: torch.Tensor) -> torch.Tensor:
        """Index of the bin each depth falls in (clamped to the range): the classification target."""
        index = torch.bucketize(depth.contiguous(), self.edges[1:-1].contiguous())
        return index.clamp_(0, self.config.num_bins - 1)
