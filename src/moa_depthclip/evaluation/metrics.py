"""Standard monocular-depth error metrics, computed per image on the valid pixels (torch, any device).

Conventions (see docs/evaluation.md for where published codes differ):

* ``d`` is the prediction, ``g`` (d*) the ground truth, both in metres, over the pixels of ``mask``.
* ``delta_k``: fraction of pixels with ``max(d/g, g/d) < 1.25**k``.
* ``abs_rel`` = mean(|d - g| / g); ``sq_rel`` = mean((d - g)^2 / g).
* ``rmse`` = sqrt(mean((d - g)^2)); ``rmse_log`` = sqrt(mean((ln d - ln g)^2)).
* ``log10`` = mean(|log10 d - log10 g|).
* ``silog`` = 100 * sqrt(mean(e^2) - mean(e)^2) with e = ln d - ln g: the scale-invariant log error
  as the BTS / AdaBins evaluation scripts and the KITTI depth benchmark report it (natural log,
  full variance, i.e. lambda = 1, scaled by 100). It is not the training loss of the same name.

Every metric is computed per image; dataset numbers are the mean over images (the BTS/AdaBins
convention), which the runner does. Images with no valid pixel get NaN.
"""

from __future__ import annotations

import torch

METRIC_NAMES = ("delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog")
HIGHER_IS_BETTER = {"delta1", "delta2", "delta3"}
# How tables name each metric.
METRIC_LABELS = {
    "delta1": "δ1", "delta2": "δ2", "delta3": "δ3", "abs_rel": "AbsRel", "sq_rel": "SqRel", "rmse": "RMSE",
    "rmse_log": "RMSE log", "log10": "log10", "silog": "SILog",
}  # fmt: skip


def compute_metrics(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image metrics for a batch.

    ``pred``, ``target``: (B, 1, H, W) or (B, H, W) metres, positive where ``mask`` is True;
    ``mask``: bool of the same shape. Returns {name: (B,) float64 tensor}, NaN for empty images.
    Computation is in float64 so that means over many pixels do not lose precision.
    """
    if pred.shape != target.shape or mask.shape != target.shape:
        raise ValueError(
            f"shape mismatch: pred {tuple(pred.shape)}, target {tuple(target.shape)}, mask {tuple(mask.shape)}"
        )
    batch = pred.shape[0]
    d = pred.reshape(batch, -1).double()
    g = target.reshape(batch, -1).double()
    m = mask.reshape(batch, -1).bool()
    # Masked-out pixels get a harmless value of 1 so logs and ratios stay finite, then weight 0.
    one = torch.ones((), dtype=d.dtype, device=d.device)
    d = torch.where(m, d, one)
    g = torch.where(m, g, one)
    weight = m.double()
    count = weight.sum(dim=1)
    nan = torch.full_like(count, float("nan"))

    def mean(values: torch.Tensor) -> torch.Tensor:
        return torch.where(count > 0, (values * weight).sum(dim=1) / count.clamp_min(1), nan)

    ratio = torch.maximum(d / g, g / d)
    log_diff = torch.log(d) - torch.log(g)
    diff = d - g
    mean_log = mean(log_diff)
    variance = (mean(log_diff**2) - mean_log**2).clamp_min(0.0)
    return {
        "delta1": mean((ratio < 1.25).double()),
        "delta2": mean((ratio < 1.25**2).double()),
        "delta3": mean((ratio < 1.25**3).double()),
        "abs_rel": mean(diff.abs() / g),
        "sq_rel": mean(diff**2 / g),
        "rmse": mean(diff**2).sqrt(),
        "rmse_log": mean(log_diff**2).sqrt(),
        "log10": mean((torch.log10(d) - torch.log10(g)).abs()),
        "silog": 100.0 * variance.sqrt(),
    }
