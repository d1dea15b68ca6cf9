"""A light progressive decoder from the tapped backbone layers to a dense feature map.

ViT-B/32 gives one coarse token grid (stride 32) at every depth. Deeper taps carry semantics,
shallower taps carry detail, so each tap is brought in at its own scale:

* the two deepest taps (and the context vector) are fused at stride 32;
* one x2 stage (stride 16) adds the second-shallowest tap, upsampled x2 by a transposed conv;
* one x2 stage (stride 8) adds the shallowest tap, upsampled x4;
* the remaining stages only upsample and refine (3x3 conv, GroupNorm, GELU).

With four taps and three stages the output is at stride 4 (e.g. 104x136 for 416x544 input).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from moa_depthclip.config import DecoderConfig


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    groups = 8 if out_channels % 8 == 0 else 1
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.GroupNorm(groups, out_channels),
        nn.GELU(),
    )


class ProgressiveDecoder(nn.Module):
    def __init__(self, width: int, num_taps: int, config: DecoderConfig) -> None:
        super().__init__()
        if num_taps < 1:
            raise ValueError("the decoder needs at least one tapped layer")
        fused = config.fusion_channels
        self.num_taps = num_taps
        self.tap_norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(num_taps))
        # Taps are ordered shallow -> deep. The deepest (up to) two fuse at stride 32.
        self.num_deep = min(2, num_taps)
        self.deep_projections = nn.ModuleList(nn.Linear(width, fused) for _ in range(self.num_deep))
        self.context_projection = nn.Linear(width, fused)
        self.fuse = _conv_block(fused, fused)

        self.stages = nn.ModuleList()
        self.skips = nn.ModuleList()
        in_channels = fused
        shallow = num_taps - self.num_deep  # taps injected at strides 16, 8, ...
        for index, out_channels in enumerate(config.stage_channels):
            self.stages.append(_conv_block(in_channels, out_channels))
            if index < shallow:
                scale = 2 ** (index + 1)
                self.skips.append(nn.ConvTranspose2d(width, out_channels, kernel_size=scale, stride=scale))
            in_channels = out_channels
        self.out_channels = in_channels
        self.stride = 32 // 2 ** len(config.stage_channels)

    def forward(self, taps: list[torch.Tensor], context: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``taps``: (B, 1 + h*w, D) token maps, shallow to deep; ``context``: (B, D)."""
        grids = [
            self._to_grid(norm(tap)[:, 1:], grid) for norm, tap in zip(self.tap_norms, taps, strict=True)
        ]
        deep = grids[-self.num_deep :]
        shallow = grids[: -self.num_deep][::-1]  # second-shallowest first: it joins at stride 16

        features = self.context_projection(context)[:, :, None, None]
        for projection, tap in zip(self.deep_projections, deep, strict=True):
            features = features + projection(tap.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        features = self.fuse(features)
        for index, stage in enumerate(self.stages):
            features = F.interpolate(features, scale_factor=2.0, mode="bilinear", align_corners=False)
            features = stage(features)
            if index < len(self.skips):
                features = features + self.skips[index](shallow[index])
        return features

    @staticmethod
    def _to_grid(patches: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        batch, _, channels = patches.shape
        return patches.transpose(1, 2).reshape(batch, channels, grid[0], grid[1])
