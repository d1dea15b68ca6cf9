"""The composite training loss of MoA-DepthCLIP, one function per term.

Which output gets which term (and why):

* ``ce``       cross-entropy over the fixed bins, on ``bin_logits`` at the decoder resolution. The
               target is the bin of the ground truth pooled to that resolution (mean of the valid
               depths in each cell when the sizes divide evenly, nearest otherwise). It trains the
               classifier directly instead of only through the expected depth, which would leave
               the bin distribution free to be wide.
* ``silog``    scale-invariant log error on the final (blended) ``depth``: the structure term.
               Convention (BTS/AdaBins): ``scale * sqrt(mean(g^2) - lam * mean(g)^2)`` with
               ``g = log(pred) - log(gt)``, ``lam = 0.85``, ``scale = 10``; ``lam < 1`` keeps part of
               the absolute-scale error, so the loss is still metric.
* ``l1``       mean absolute error in metres on the final ``depth``: pins the metric scale.
* ``reg_l1``   the same L1 on ``depth_reg``, so that the regression branch stays a usable depth on
               its own (the blend gate could otherwise let it drift); the bin branch already has ``ce``.
* ``gradient`` multi-scale gradient matching of the log-depth difference ``R = log pred - log gt``
               (MegaDepth/MiDaS style): mean of ``|dx R| + |dy R|`` over pairs of valid neighbours,
               at strides 1, 2, 4, ... . Sharp depth edges in the right places.
* ``ssim``     ``(1 - SSIM) / 2`` between predicted and ground-truth depth (divided by ``max_depth`` so
               that SSIM's constants fit a [0, 1] range), with local statistics over valid pixels only.
* ``load_balance`` the model's router regulariser ``out.aux_loss``, already weighted by the model
               config: the MoA load-balancing term by default, the gate-entropy term with
               ``model.moa.router_regularizer = entropy``, nothing with ``none`` or one expert. This
               weight multiplies it (1 keeps the model's weighting; 0 drops it).

Every pixel term is a mean over the valid pixels of *each image* (``gt > min_valid``, finite), then a
mean over the images of the batch (an image with no valid pixel counts as 0). Per-image means make a
batch split over processes or accumulation steps give exactly the gradient of the whole batch;
invalid pixels get exactly zero gradient. ``load_balance`` is computed per micro-batch, like the
Switch Transformer's, so it is the one term that depends on how a batch is split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from moa_depthclip.data.validity import valid_depth_mask
from moa_depthclip.model.outputs import DepthOutput

TERMS = ("ce", "silog", "l1", "reg_l1", "gradient", "ssim", "load_balance")


@dataclass
class LossConfig:
    """Weights of the composite loss (0 disables a term) and the conventions of each term."""

    ce: float = 0.1
    silog: float = 1.0
    l1: float = 0.1
    reg_l1: float = 0.05
    gradient: float = 0.5
    ssim: float = 0.5
    load_balance: float = 1.0
    silog_lambda: float = 0.85
    silog_scale: float = 10.0
    gradient_scales: int = 4
    ssim_window: int = 7
    # Ground truth at or below this is invalid (0 marks missing depth in every dataset here).
    min_valid_depth: float = 1e-3
    # Upper bound used to normalise depth for SSIM (set to the model's max_depth by the trainer).
    max_depth: float = 10.0


def valid_mask(depth: torch.Tensor, min_valid: float = 1e-3) -> torch.Tensor:
    """Float mask of pixels with usable ground truth (``data.validity.valid_depth_mask`` as weights)."""
    return valid_depth_mask(depth, min_valid).to(depth.dtype)


def _per_image_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over masked pixels of each image -> (B,); 0 for an image with none."""
    dims = tuple(range(1, values.dim()))
    return (values * mask).sum(dims) / mask.sum(dims).clamp_min(1.0)


def _safe(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Ground truth with invalid pixels replaced by 1 so that log/divide never see 0 or NaN."""
    return torch.where(mask > 0, target, torch.ones_like(target))


def _log(pred: torch.Tensor) -> torch.Tensor:
    return torch.log(pred.clamp_min(1e-6))


def silog_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, lam: float = 0.85, scale: float = 10.0
) -> torch.Tensor:
    """``scale * sqrt(mean(g^2) - lam * mean(g)^2)`` per image, averaged over the batch."""
    g = (_log(pred) - torch.log(_safe(target, mask))) * mask
    mean_g = _per_image_mean(g, mask)
    mean_g2 = _per_image_mean(g * g, mask)
    has_pixels = (mask.flatten(1).sum(1) > 0).to(pred.dtype)
    # The 1e-8 keeps the gradient of sqrt finite at a perfect prediction.
    value = torch.sqrt((mean_g2 - lam * mean_g * mean_g).clamp_min(0.0) + 1e-8) * has_pixels
    return scale * value.mean()


def l1_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error in metres over valid pixels of each image, averaged over the batch."""
    return _per_image_mean((pred - _safe(target, mask)).abs() * mask, mask).mean()


def gradient_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, scales: int = 4
) -> torch.Tensor:
    """Multi-scale gradient matching of ``R = log pred - log gt`` over pairs of valid neighbours.

    At scale ``s`` the maps are subsampled with stride ``2**s``; each scale contributes the per-image
    mean of ``|dx R| + |dy R|`` (x and y pairs pooled), and the scales are summed.
    """
    residual = (_log(pred) - torch.log(_safe(target, mask))) * mask
    total = pred.new_zeros(pred.shape[0])
    for scale in range(scales):
        step = 2**scale
        r, m = residual[..., ::step, ::step], mask[..., ::step, ::step]
        if r.shape[-1] < 2 and r.shape[-2] < 2:
            break
        mx = m[..., :, 1:] * m[..., :, :-1]
        my = m[..., 1:, :] * m[..., :-1, :]
        gx = (r[..., :, 1:] - r[..., :, :-1]).abs() * mx
        gy = (r[..., 1:, :] - r[..., :-1, :]).abs() * my
        dims = tuple(range(1, r.dim()))
        pairs = mx.sum(dims) + my.sum(dims)
        total = total + (gx.sum(dims) + gy.sum(dims)) / pairs.clamp_min(1.0)
    return total.mean()


def masked_ssim(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, window: int = 7
) -> torch.Tensor:
    """Per-pixel SSIM with local statistics over the valid pixels of a ``window`` x ``window`` box.

    Both maps should lie roughly in [0, 1] (SSIM's constants are 0.01^2 and 0.03^2). Windows are
    zero-padded at the border, and padding counts as invalid, so borders need no special case.
    """
    c1, c2 = 0.01**2, 0.03**2
    pad = window // 2

    def local_mean(values: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(values * mask, window, stride=1, padding=pad) / count

    count = F.avg_pool2d(mask, window, stride=1, padding=pad).clamp_min(1e-6)
    mu_x, mu_y = local_mean(pred, count), local_mean(target, count)
    var_x = (local_mean(pred * pred, count) - mu_x * mu_x).clamp_min(0.0)
    var_y = (local_mean(target * target, count) - mu_y * mu_y).clamp_min(0.0)
    cov = local_mean(pred * target, count) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, max_depth: float = 10.0, window: int = 7
) -> torch.Tensor:
    """``(1 - SSIM) / 2`` averaged over valid centre pixels of each image, then over the batch."""
    target = torch.where(mask > 0, target, torch.zeros_like(target))
    ssim = masked_ssim(pred / max_depth, target / max_depth, mask, window)
    return _per_image_mean((1.0 - ssim) / 2.0, mask).mean()


def pool_depth(depth: torch.Tensor, size: tuple[int, int], min_valid: float = 1e-3) -> torch.Tensor:
    """Ground truth at a coarser resolution without mixing in invalid pixels.

    When the sizes divide evenly each cell gets the mean of its valid depths (0 if it has none);
    otherwise nearest sampling.
    """
    height, width = depth.shape[-2:]
    if (height, width) == tuple(size):
        return depth
    if height % size[0] == 0 and width % size[1] == 0:
        kernel = (height // size[0], width // size[1])
        mask = valid_mask(depth, min_valid)
        total = F.avg_pool2d(torch.where(mask > 0, depth, torch.zeros_like(depth)), kernel)
        count = F.avg_pool2d(mask, kernel)
        return torch.where(count > 0, total / count.clamp_min(1e-12), torch.zeros_like(total))
    return F.interpolate(depth, size=size, mode="nearest-exact")


def bin_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, edges: torch.Tensor, min_valid: float = 1e-3
) -> torch.Tensor:
    """Cross-entropy of ``logits`` (B, K, h, w) against the bin of the pooled ground truth.

    ``edges`` are the K + 1 bin edges; depths outside the range fall in the first / last bin.
    """
    low = pool_depth(target, tuple(logits.shape[-2:]), min_valid)
    mask = valid_mask(low, min_valid)
    index = torch.bucketize(low.contiguous(), edges[1:-1].contiguous()).clamp_(0, logits.shape[1] - 1)
    per_pixel = F.cross_entropy(logits.float(), index[:, 0], reduction="none")[:, None]
    return _per_image_mean(per_pixel * mask, mask).mean()


class CompositeLoss(nn.Module):
    """Weighted sum of the terms above; ``forward`` returns the total and every term (unweighted)."""

    def __init__(self, config: LossConfig | None = None, bin_edges: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else LossConfig()
        if self.config.ce and bin_edges is None:
            raise ValueError("the bin cross-entropy needs the model's bin edges (model.head.edges)")
        self.register_buffer(
            "bin_edges", bin_edges if bin_edges is not None else torch.zeros(2), persistent=False
        )

    def forward(
        self, output: DepthOutput, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        mask = valid_mask(target.float(), c.min_valid_depth)
        target = torch.where(mask > 0, target.float(), torch.zeros_like(mask))  # NaN/inf -> 0 = invalid
        depth = output.depth.float()
        terms: dict[str, torch.Tensor] = {}
        if c.ce:
            if output.bin_logits is None:
                raise ValueError("the bin cross-entropy needs a model that returns bin_logits")
            terms["ce"] = bin_cross_entropy(output.bin_logits, target, self.bin_edges, c.min_valid_depth)
        if c.silog:
            terms["silog"] = silog_loss(depth, target, mask, c.silog_lambda, c.silog_scale)
        if c.l1:
            terms["l1"] = l1_loss(depth, target, mask)
        if c.reg_l1 and output.depth_reg is not None:
            terms["reg_l1"] = l1_loss(output.depth_reg.float(), target, mask)
        if c.gradient:
            terms["gradient"] = gradient_loss(depth, target, mask, c.gradient_scales)
        if c.ssim:
            terms["ssim"] = ssim_loss(depth, target, mask, c.max_depth, c.ssim_window)
        if c.load_balance and output.aux_loss is not None:
            terms["load_balance"] = output.aux_loss.float()
        total = depth.new_zeros(())
        for name, value in terms.items():
            total = total + getattr(c, name) * value
        return total, terms
