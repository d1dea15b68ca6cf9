"""A light progressive decoder from the tapped backbone layers to a dense feature map.

ViT-B/32 gives one coarse token grid (stride 32) at every depth. Deeper taps carry semantics,
shallower taps carry detail, so each tap is brought in at its own scale:

* the two deepest taps (and the context vector, unless the model has none) are fused at stride 32;
* one x2 stage (stride 16) adds the second-shallowest tap, upsampled x2 by a transposed conv;
* one x2 stage (stride 8) adds the shallowest tap, upsampled x4;
* the remaining stages only upsample and refine (3x3 conv, GroupNorm, GELU);
* optionally (``image_stem_channels > 0``) a two-conv stem on the image itself joins before the
  last stage: a ViT-B/32 token covers 32x32 pixels, and no tap carries finer detail than that.

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
    def __init__(self, width: int, num_taps: int, config: DecoderConfig, use_context: bool = True) -> None:
        super().__init__()
        if num_taps < 1:
            raise ValueError("the decoder needs at least one tapped layer")
        fused = config.fusion_channels
        self.num_taps = num_taps
        self.tap_norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(num_taps))
        # Taps are ordered shallow -> deep. The deepest (up to) two fuse at stride 32.
        self.num_deep = min(2, num_taps)
        self.deep_projections = nn.ModuleList(nn.Linear(width, fused) for _ in range(self.num_deep))
        self.context_projection = nn.Linear(width, fused) if use_context else None
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
        # Image stem: pixels -> stride of the last stage's input, with that stage's input channels.
        self.image_stem = None
        if config.image_stem_channels > 0 and config.stage_channels:
            stem_stride = self.stride
            last_in = config.stage_channels[-2] if len(config.stage_channels) > 1 else fused
            layers: list[nn.Module] = []
            channels = 3
            while stem_stride > 1:
                out = config.image_stem_channels if stem_stride > 2 else last_in
                layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False)]
                layers += [nn.GroupNorm(8 if out % 8 == 0 else 1, out), nn.GELU()]
                channels, stem_stride = out, stem_stride // 2
            self.image_stem = nn.Sequential(*layers)

    def forward(
        self,
        taps: list[torch.Tensor],
        context: torch.Tensor | None,
        grid: tuple[int, int],
        pixels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``taps``: (B, 1 + h*w, D) token maps, shallow to deep; ``context``: (B, D), or None for a
        decoder built without context; ``pixels``: the normalised image (only read by the optional
        image stem)."""
        patches = [norm(tap)[:, 1:] for norm, tap in zip(self.tap_norms, taps, strict=True)]  # (B, h*w, D)
        deep = patches[-self.num_deep :]
        shallow = patches[: -self.num_deep][::-1]  # second-shallowest first: it joins at stride 16

        features = 0
        if self.context_projection is not None:
            if context is None:
                raise ValueError("this decoder was built to fuse a context vector, but none was given")
            features = self.context_projection(context)[:, :, None, None]
        for projection, tap in zip(self.deep_projections, deep, strict=True):
            features = features + self._to_grid(projection(tap), grid)
        features = self.fuse(features)
        for index, stage in enumerate(self.stages):
            features = F.interpolate(features, scale_factor=2.0, mode="bilinear", align_corners=False)
            if self.image_stem is not None and index == len(self.stages) - 1:
                features = features + self.image_stem(pixels)
            features = stage(features)
            if index < len(self.skips):
                features = features + _transposed_conv_tokens(self.skips[index], shallow[index], grid)
        return features

    @staticmethod
    def _to_grid(patches: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(B, h*w, C) tokens -> (B, C, h, w), a view (channels-last strides), no copy."""
        return patches.unflatten(1, grid).permute(0, 3, 1, 2)


def _transposed_conv_tokens(
    conv: nn.ConvTranspose2d, tokens: torch.Tensor, grid: tuple[int, int]
) -> torch.Tensor:
    """``conv`` (kernel == stride, no padding) applied to a token map, computed as one matmul.

    With kernel == stride every input cell writes its own s x s output block, so the transposed
    convolution is a linear map from each token to ``C_out * s * s`` values followed by a pixel
    rearrangement. As a dense matmul on the tokens it is about twice as fast on CPU as the library's
    transposed convolution, and needs no token -> grid copy. Same parameters, same result.
    """
    scale = conv.stride[0]
    batch = tokens.shape[0]
    height, width = grid
    bias = conv.bias.repeat_interleave(scale * scale) if conv.bias is not None else None
    blocks = F.linear(tokens, conv.weight.flatten(1).t(), bias)  # (B, h*w, C_out * s * s)
    blocks = blocks.reshape(batch, height, width, conv.out_channels, scale, scale)
    return blocks.permute(0, 3, 1, 4, 2, 5).reshape(batch, conv.out_channels, height * scale, width * scale)
