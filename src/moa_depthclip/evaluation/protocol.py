"""Evaluation protocols: everything besides the model that changes the numbers.

A protocol fixes what the model is fed (the whole frame, a region of it, a resize), how its
prediction is brought back to the ground truth (resize, or paste into a zero canvas), which pixels
are scored (depth range, crop, optionally only where the prediction is positive), clamping, median
scaling, flip averaging, and how per-pixel errors become one number (per image or per batch).
``describe()`` states all of them in one line, and every results table prints that line.

Named protocols (``PROTOCOLS``; ``get_protocol`` is the one parser of a protocol name):

* ``nyu``: the BTS/AdaBins standard. Whole frame in, prediction resized (bilinear) to 480x640,
  1e-3 < d* < 10 m, Eigen crop rows 45:471, cols 41:601, clamp, per-image metrics.
* ``nyu-depthclip`` (alias ``depthclip-official``): the official DepthCLIP evaluation. Rows 56:472,
  cols 60:604 of the 480x640 frame in (416x544, no resize), flip averaging, prediction pasted into
  a zero 480x640 canvas, scored in rows 45:471, cols 46:601 where the prediction > 1e-3 and
  1e-3 < d* < 10 m, clamp, per-image metrics.
* ``nyu-adadepthclip``: the authors' earlier public evaluation (AdaDepthCLIP). Frame resized
  (bicubic) to 224x224 in, prediction resized (bilinear) to 480x640 and clamped to [1e-3, 10],
  KITTI's Garg crop fractions applied to the NYU frame, 1e-3 < d* < 10 m, median scaling per batch
  of 8 images, metrics over all pixels of a batch, averaged over batches.
* ``kitti``: 1e-3 < d* < 80 m, Garg crop, clamp, per-image metrics.
* ``synthetic``: NYU range, no crop.

Crops are defined on the benchmark resolution and scaled proportionally for other resolutions:
``eigen`` = rows 45:471, cols 41:601 of 480x640; ``eigen-depthclip`` = rows 45:471, cols 46:601;
``garg`` = rows 0.40810811*H : 0.99189189*H, cols 0.03594771*W : 0.96405229*W (truncated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from moa_depthclip.data.transforms import resize_image, scale_box
from moa_depthclip.data.validity import valid_depth_mask

Box = tuple[int, int, int, int]  # top, bottom, left, right (half-open, 0-based), defined at 480x640

EIGEN_CROP_480x640: Box = (45, 471, 41, 601)
DEPTHCLIP_EVAL_CROP_480x640: Box = (45, 471, 46, 601)
DEPTHCLIP_INPUT_BOX_480x640: Box = (56, 472, 60, 604)  # 416x544 region the official code feeds
GARG_CROP_FRACTIONS = (0.40810811, 0.99189189, 0.03594771, 0.96405229)

NAMED_CROPS: dict[str, Box] = {"eigen": EIGEN_CROP_480x640, "eigen-depthclip": DEPTHCLIP_EVAL_CROP_480x640}
CROPS = (None, *NAMED_CROPS, "garg")
MEDIAN_SCALING = ("none", "image", "batch")
AGGREGATIONS = ("image", "batch")
INTERPOLATIONS = ("bilinear", "bicubic")


def crop_box(crop: str | None, height: int, width: int) -> Box:
    """(top, bottom, left, right), half-open, of ``crop`` on an image of ``height`` x ``width``."""
    if crop is None:
        return 0, height, 0, width
    if crop in NAMED_CROPS:
        return scale_box(NAMED_CROPS[crop], height, width)
    if crop == "garg":
        t, b, left, right = GARG_CROP_FRACTIONS
        return int(t * height), int(b * height), int(left * width), int(right * width)
    raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")


def box_mask(box: Box, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool (H, W) mask that is True inside ``box``."""
    top, bottom, left, right = box
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[top:bottom, left:right] = True
    return mask


def crop_mask(crop: str | None, height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool (H, W) mask that is True inside the crop."""
    return box_mask(crop_box(crop, height, width), height, width, device)


def _box_text(box: Box) -> str:
    return f"rows {box[0]}:{box[1]}, cols {box[2]}:{box[3]}"


@dataclass(frozen=True)
class EvalProtocol:
    """Options of one evaluation; see the module docstring and docs/evaluation.md.

    ``input_box``: the region (at 480x640, scaled for other sizes) of the frame fed to the model;
    the prediction is pasted back at that position into a zero canvas. ``input_size``: resize the
    (boxed) image to this size before the model (``input_interpolation``, antialiased when
    shrinking). ``min_prediction``: score only pixels whose prediction exceeds it (with an
    ``input_box`` and no ``min_prediction``, only the box is scored). ``clamp_before_scaling``:
    clamp, then median-scale without clamping again (the AdaDepthCLIP order). ``aggregation``:
    ``image`` = metrics per image averaged over images; ``batch`` = metrics over all scored pixels
    of ``batch_size`` consecutive images, averaged over batches.
    """

    name: str = "nyu"
    min_depth: float = 1e-3
    max_depth: float = 10.0
    crop: str | None = "eigen"
    clamp: bool = True  # clamp predictions to [min_depth, max_depth]
    median_scaling: str = "none"  # none | image | batch: multiply by median(gt) / median(pred)
    flip: bool = False  # average with the flipped prediction (done by the prediction path)
    resize_mode: str = "bilinear"  # how the prediction is brought to the ground-truth resolution
    input_box: Box | None = None
    input_size: tuple[int, int] | None = None
    input_interpolation: str = "bilinear"
    min_prediction: float | None = None
    clamp_before_scaling: bool = False
    aggregation: str = "image"
    batch_size: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.median_scaling, bool):  # older spelling: True = per image
            object.__setattr__(self, "median_scaling", "image" if self.median_scaling else "none")
        for name in ("input_box", "input_size"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {self.crop!r}")
        if not 0 <= self.min_depth < self.max_depth:
            raise ValueError(f"need 0 <= min_depth < max_depth, got {self.min_depth}, {self.max_depth}")
        if self.median_scaling not in MEDIAN_SCALING:
            raise ValueError(f"median_scaling must be one of {MEDIAN_SCALING}, got {self.median_scaling!r}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if self.input_interpolation not in INTERPOLATIONS:
            raise ValueError(f"input_interpolation must be one of {INTERPOLATIONS}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.input_box is not None:
            top, bottom, left, right = self.input_box
            if not (0 <= top < bottom and 0 <= left < right):
                raise ValueError(f"input_box must be (top, bottom, left, right), got {self.input_box}")
        if self.input_size is not None and (min(self.input_size) <= 0 or len(self.input_size) != 2):
            raise ValueError(f"input_size must be (H, W) > 0, got {self.input_size}")

    def with_options(self, **changes: object) -> EvalProtocol:
        return replace(self, **changes)

    # -- description ----------------------------------------------------------------------------

    def describe(self) -> str:
        """Every option in one line (printed under every results table)."""
        if self.crop is None:
            crop = "no crop"
        elif self.crop == "garg":
            crop = "Garg crop (fractions of the ground-truth size)"
        else:
            name = "Eigen crop" if self.crop == "eigen" else "DepthCLIP's Eigen crop"
            crop = f"{name} ({_box_text(NAMED_CROPS[self.crop])} at 480x640)"
        model_input = "whole frame"
        if self.input_box is not None:
            model_input = f"frame region {_box_text(self.input_box)} at 480x640"
        if self.input_size is not None:
            model_input += (
                f" resized ({self.input_interpolation}) to {self.input_size[0]}x{self.input_size[1]}"
            )
        if self.input_box is not None:
            back = "prediction pasted into a zero canvas at the input region"
        else:
            back = f"prediction resized ({self.resize_mode}) to ground-truth resolution"
        scored = f"valid {self.min_depth:g} < d* < {self.max_depth:g} m"
        if self.min_prediction is not None:
            scored += f" and prediction > {self.min_prediction:g}"
        clamp = (
            f"prediction clamped to [{self.min_depth:g}, {self.max_depth:g}]" if self.clamp else "no clamp"
        )
        if self.clamp and self.clamp_before_scaling:
            clamp += " before median scaling"
        scaling = {"none": "no median scaling", "image": "median scaling per image",
                   "batch": f"median scaling per batch of {self.batch_size}"}[self.median_scaling]  # fmt: skip
        if self.aggregation == "image":
            averaging = "metrics per image, averaged over images"
        else:
            averaging = (
                f"metrics over all pixels of a batch of {self.batch_size} images, averaged over batches"
            )
        parts = [
            f"{self.name} protocol",
            f"model input: {model_input}",
            back,
            scored,
            crop,
            clamp,
            scaling,
            "flip averaging" if self.flip else "no flip",
            f"{averaging}; SILog = 100*sqrt(var(ln d - ln d*))",
        ]
        return "; ".join(parts)

    # -- the model input ------------------------------------------------------------------------

    def model_input(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] -> what the protocol feeds the model (region, then resize).

        The prediction path still applies its size rule (multiples of 32) to the result.
        """
        x = images
        if self.input_box is not None:
            top, bottom, left, right = scale_box(self.input_box, *images.shape[-2:])
            x = x[..., top:bottom, left:right]
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            if self.input_interpolation == "bilinear":
                x = resize_image(x, self.input_size)
            else:
                shrinking = self.input_size[0] < x.shape[-2] or self.input_size[1] < x.shape[-1]
                x = F.interpolate(
                    x, size=self.input_size, mode="bicubic", align_corners=False, antialias=shrinking
                ).clamp(0.0, 1.0)
        return x

    # -- from prediction to scored pixels -------------------------------------------------------

    def valid_mask(self, target: torch.Tensor) -> torch.Tensor:
        """Bool mask (same shape as ``target`` (B, 1, H, W)) of ground truth in range and inside the crop."""
        valid = valid_depth_mask(target, self.min_depth, self.max_depth)
        height, width = target.shape[-2:]
        return valid & crop_mask(self.crop, height, width, target.device)

    def prepare(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bring a (B, 1, h, w) prediction to the (B, 1, H, W) target: place, scale, clamp.

        Returns (prediction, mask of scored pixels). Non-finite predictions are replaced first
        (NaN -> min_depth, +inf -> max_depth), so a broken pixel is scored as a bad one.
        """
        if pred.dim() != 4 or target.dim() != 4:
            raise ValueError("pred and target must be (B, 1, H, W)")
        pred = torch.nan_to_num(
            pred.float(), nan=self.min_depth, posinf=self.max_depth, neginf=self.min_depth
        )
        height, width = target.shape[-2:]
        mask = self.valid_mask(target)
        if self.input_box is not None:
            box = scale_box(self.input_box, height, width)
            pred = self._paste(pred, box, height, width)
            if self.min_prediction is None:
                mask = mask & box_mask(box, height, width, target.device)
        else:
            pred = self._resize(pred, (height, width))
        if self.min_prediction is not None:
            mask = mask & (pred > self.min_prediction)
        if self.clamp and self.clamp_before_scaling:
            pred = pred.clamp(self.min_depth, self.max_depth)
        if self.median_scaling == "image":
            pred = _median_scale(pred, target, mask)
        elif self.median_scaling == "batch":
            pred = _median_scale(pred, target, mask, per_image=False)
        if self.clamp and not self.clamp_before_scaling:
            pred = pred.clamp(self.min_depth, self.max_depth)
        return pred, mask

    def _resize(self, pred: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(pred.shape[-2:]) == tuple(size):
            return pred
        align = False if self.resize_mode in ("bilinear", "bicubic") else None
        return F.interpolate(pred, size=size, mode=self.resize_mode, align_corners=align)

    def _paste(self, pred: torch.Tensor, box: Box, height: int, width: int) -> torch.Tensor:
        top, bottom, left, right = box
        canvas = pred.new_zeros(pred.shape[0], 1, height, width)
        canvas[..., top:bottom, left:right] = self._resize(pred, (bottom - top, right - left))
        return canvas


def _median_scale(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, per_image: bool = True
) -> torch.Tensor:
    """Multiply by median(d*) / median(d) over the scored pixels, per image or over the whole batch.

    ``torch.median`` takes the lower of the two middle values for an even count, as the codes
    that define these protocols do.
    """
    if not per_image:
        if not mask.any():
            return pred
        return pred * (target[mask].median() / pred[mask].median().clamp_min(1e-8))
    scaled = pred.clone()
    for i in range(pred.shape[0]):
        m = mask[i]
        if m.any():
            scaled[i] = pred[i] * (target[i][m].median() / pred[i][m].median().clamp_min(1e-8))
    return scaled


def nyu_protocol(**changes: object) -> EvalProtocol:
    """NYU Depth V2 (BTS/AdaBins): 1e-3 < d* < 10 m, Eigen crop, clamp, per image."""
    return EvalProtocol(name="nyu", min_depth=1e-3, max_depth=10.0, crop="eigen").with_options(**changes)


def nyu_depthclip_protocol(**changes: object) -> EvalProtocol:
    """The official DepthCLIP evaluation: 416x544 region in, flip, zero canvas, DepthCLIP's crop."""
    return EvalProtocol(
        name="nyu-depthclip",
        min_depth=1e-3,
        max_depth=10.0,
        crop="eigen-depthclip",
        flip=True,
        input_box=DEPTHCLIP_INPUT_BOX_480x640,
        min_prediction=1e-3,
    ).with_options(**changes)


def nyu_adadepthclip_protocol(**changes: object) -> EvalProtocol:
    """The authors' earlier (AdaDepthCLIP) evaluation: 224x224 in, Garg fractions, median per batch."""
    return EvalProtocol(
        name="nyu-adadepthclip",
        min_depth=1e-3,
        max_depth=10.0,
        crop="garg",
        input_size=(224, 224),
        input_interpolation="bicubic",
        clamp_before_scaling=True,
        median_scaling="batch",
        aggregation="batch",
        batch_size=8,
    ).with_options(**changes)


def kitti_protocol(**changes: object) -> EvalProtocol:
    """KITTI Eigen split: 1e-3 < d* < 80 m (the 80 m cap), Garg crop, clamp."""
    return EvalProtocol(name="kitti", min_depth=1e-3, max_depth=80.0, crop="garg").with_options(**changes)


def synthetic_protocol(**changes: object) -> EvalProtocol:
    """Synthetic scenes: NYU range, no crop (rendered images have no invalid border)."""
    return EvalProtocol(name="synthetic", min_depth=1e-3, max_depth=10.0, crop=None).with_options(**changes)


PROTOCOLS: dict[str, Callable[..., EvalProtocol]] = {
    "nyu": nyu_protocol,
    "nyu-depthclip": nyu_depthclip_protocol,
    "nyu-adadepthclip": nyu_adadepthclip_protocol,
    "kitti": kitti_protocol,
    "synthetic": synthetic_protocol,
}
PROTOCOL_ALIASES = {"depthclip-official": "nyu-depthclip"}
PROTOCOL_NAMES = tuple(PROTOCOLS) + tuple(PROTOCOL_ALIASES)


def get_protocol(name: str, **changes: object) -> EvalProtocol:
    """The protocol called ``name`` (see ``PROTOCOL_NAMES``) with ``changes`` applied.

    Raises ``ValueError`` with the known names for an unknown one (the command line turns it into a
    one-line error).
    """
    key = PROTOCOL_ALIASES.get(name, name)
    if key not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {name!r}; choose one of {', '.join(PROTOCOL_NAMES)}")
    return PROTOCOLS[key](**changes)
