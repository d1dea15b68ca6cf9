"""Evaluation protocols: how a prediction is compared with ground truth.

A protocol fixes everything that changes the numbers besides the model: resizing the prediction to the
ground-truth resolution, the valid depth range, the crop, clamping, median scaling and flip averaging.
``describe()`` states all of them in one line, and every results table prints that line.

Crops are defined on the benchmark resolution and scaled proportionally for other resolutions:

* ``"eigen"`` (NYU): rows 45:471, cols 41:601 of 480x640 (half-open, 0-based; the BTS/AdaBins mask).
* ``"garg"`` (KITTI): rows 0.40810811*H : 0.99189189*H, cols 0.03594771*W : 0.96405229*W.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

CROPS = (None, "eigen", "garg")

EIGEN_CROP_480x640 = (45, 471, 41, 601)  # top, bottom, left, right (half-open)
GARG_CROP_FRACTIONS = (0.40810811, 0.99189189, 0.03594771, 0.96405229)


def crop_box(crop: str | None, height: int, width: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), half-open, of ``crop`` on an image of ``height`` x ``width``."""
    if crop is None:
        return 0, height, 0, width
    if crop == "eigen":
        top, bottom, left, right = EIGEN_CROP_480x640
        if (height, width) == (480, 640):
            return top, bottom, left, right
        return (
            round(top * height / 480),
            round(bottom * height / 480),
            round(left * width / 640),
            round(right * width / 640),
        )
    if crop == "garg":
        t, b, left, right = GARG_CROP_FRACTIONS
        return int(t * height), int(b * height), int(left * width), int(right * width)
    raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")


def crop_mask(crop: str | None, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool (H, W) mask that is True inside the crop."""
    top, bottom, left, right = crop_box(crop, height, width)
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[top:bottom, left:right] = True
    return mask


@dataclass(frozen=True)
class EvalProtocol:
    """Options of one evaluation; see the module docstring and docs/evaluation.md."""

    name: str = "nyu"
    min_depth: float = 1e-3
    max_depth: float = 10.0
    crop: str | None = "eigen"
    clamp: bool = True  # clamp predictions to [min_depth, max_depth]
    median_scaling: bool = False  # rescale each prediction by median(gt) / median(pred) (relative models)
    flip: bool = False  # average with the flipped prediction (done by the runner)
    resize_mode: str = "bilinear"  # how the prediction is brought to the ground-truth resolution

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {self.crop!r}")
        if not 0 <= self.min_depth < self.max_depth:
            raise ValueError(f"need 0 <= min_depth < max_depth, got {self.min_depth}, {self.max_depth}")

    def with_options(self, **changes: object) -> EvalProtocol:
        return replace(self, **changes)

    def describe(self) -> str:
        crop = {None: "no crop", "eigen": "Eigen crop (rows 45:471, cols 41:601 at 480x640)",
                "garg": "Garg crop"}[self.crop]  # fmt: skip
        parts = [
            f"{self.name} protocol",
            f"prediction resized ({self.resize_mode}) to ground-truth resolution",
            f"valid {self.min_depth:g} < d* < {self.max_depth:g} m",
            crop,
            f"prediction clamped to [{self.min_depth:g}, {self.max_depth:g}]" if self.clamp else "no clamp",
            "median scaling" if self.median_scaling else "no median scaling",
            "flip averaging" if self.flip else "no flip",
            "metrics per image, averaged over images; SILog = 100*sqrt(var(ln d - ln d*))",
        ]
        return "; ".join(parts)

    def valid_mask(self, target: torch.Tensor) -> torch.Tensor:
        """Bool mask (same shape as ``target`` (B, 1, H, W)) of evaluated pixels."""
        valid = torch.isfinite(target) & (target > self.min_depth) & (target < self.max_depth)
        height, width = target.shape[-2:]
        return valid & crop_mask(self.crop, height, width, target.device)

    def prepare(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bring a (B, 1, h, w) prediction to the (B, 1, H, W) target: resize, scale, clamp.

        Returns (prediction, valid mask). Non-finite predictions are replaced before clamping
        (NaN -> min_depth, +inf -> max_depth), so a broken pixel is scored as a bad one, not dropped.
        """
        if pred.dim() != 4 or target.dim() != 4:
            raise ValueError("pred and target must be (B, 1, H, W)")
        pred = torch.nan_to_num(
            pred.float(), nan=self.min_depth, posinf=self.max_depth, neginf=self.min_depth
        )
        if pred.shape[-2:] != target.shape[-2:]:
            align = False if self.resize_mode in ("bilinear", "bicubic") else None
            pred = F.interpolate(pred, size=target.shape[-2:], mode=self.resize_mode, align_corners=align)
        mask = self.valid_mask(target)
        if self.median_scaling:
            pred = _median_scale(pred, target, mask)
        if self.clamp:
            pred = pred.clamp(self.min_depth, self.max_depth)
        return pred, mask


def _median_scale(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    scaled = pred.clone()
    for i in range(pred.shape[0]):
        m = mask[i]
        if m.any():
            scale = target[i][m].median() / pred[i][m].median().clamp_min(1e-8)
            scaled[i] = pred[i] * scale
    return scaled


def nyu_protocol(**changes: object) -> EvalProtocol:
    """NYU Depth V2: 1e-3 < d* < 10 m, Eigen crop, clamp."""
    return EvalProtocol(name="nyu", min_depth=1e-3, max_depth=10.0, crop="eigen").with_options(**changes)


def kitti_protocol(**changes: object) -> EvalProtocol:
    """KITTI Eigen split: 1e-3 < d* < 80 m (the 80 m cap), Garg crop, clamp."""
    return EvalProtocol(name="kitti", min_depth=1e-3, max_depth=80.0, crop="garg").with_options(**changes)


def synthetic_protocol(**changes: object) -> EvalProtocol:
    """Synthetic scenes: NYU range, no crop (rendered images have no invalid border)."""
    return EvalProtocol(name="synthetic", min_depth=1e-3, max_depth=10.0, crop=None).with_options(**changes)


PROTOCOLS = {"nyu": nyu_protocol, "kitti": kitti_protocol, "synthetic": synthetic_protocol}
