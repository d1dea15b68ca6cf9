"""The one prediction path: every caller that runs a depth model on images goes through here.

Two entry points, one underneath the other:

* :func:`predict_batch` — a (B, 3, H, W) float tensor in [0, 1] -> (B, 1, h, w) depth at the
  working size. It applies the working-size rule, runs the model without gradients, averages with
  the mirrored prediction when asked (the only place in the package that flips at test time) and
  unwraps the output through :func:`depth_of`. The evaluation runner, the image path below, the
  ONNX backend and the demo all call it.
* :func:`predict_depth` — what people have (PIL images, NumPy arrays, tensors, file paths, lists)
  -> ``float32`` (H, W) metres at each image's original size. It decodes, resizes ``uint8`` images
  before converting them to float (a 50-megapixel photo never becomes a full-size float tensor),
  batches images of equal working size through :func:`predict_batch` and resizes the depth back.

The working size (:func:`working_size`) is ``input_size`` when given (or the model's
``fixed_input_size``), else the image with its long side set to ``long_side`` and both sides rounded
to the nearest multiples of 32 by ``data.transforms.model_input_size`` (``round_to_multiple`` on
each side); without ``long_side`` the image's own size is rounded.

Flip averaging has one authority: ``flip=True`` here, or a model whose ``default_flip`` is True
(DepthCLIP with ``DepthCLIPConfig(flip=True)``, the published setting). Models never flip inside
``forward``, so asking twice still flips once.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from moa_depthclip.data.transforms import model_input_size, resize_image
from moa_depthclip.errors import DataError, InputSizeError

ImageInput = Image.Image | np.ndarray | str | os.PathLike | torch.Tensor

DEFAULT_LONG_SIDE = 640
MULTIPLE = 32


# --------------------------------------------------------------------------------------------------
# sizes


def working_size(
    height: int,
    width: int,
    long_side: int | None = DEFAULT_LONG_SIDE,
    input_size: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """The (H, W) the model sees: ``input_size`` if given, else aspect kept with the long side set
    (``long_side=None``: each side rounded to the nearest multiple of 32)."""
    if input_size is not None:
        h, w = (int(v) for v in input_size)
        if h <= 0 or w <= 0 or h % MULTIPLE or w % MULTIPLE:
            raise InputSizeError(f"input size {h}x{w} must be positive multiples of {MULTIPLE}")
        return h, w
    if long_side is None:
        return model_input_size(height, width, MULTIPLE)
    if long_side < MULTIPLE:
        raise InputSizeError(f"long side {long_side} must be at least {MULTIPLE}")
    scale = long_side / max(height, width)
    return model_input_size(round(height * scale), round(width * scale), MULTIPLE)


# --------------------------------------------------------------------------------------------------
# the tensor path


def depth_of(output: Any) -> torch.Tensor:
    """The depth of a model output: ``DepthOutput.depth``, or a raw tensor/array, as (B, 1, H, W) float.

    The one place that unwraps outputs; a model returning anything else is a programming error.
    """
    depth = output.depth if hasattr(output, "depth") else output
    if isinstance(depth, np.ndarray):
        depth = torch.from_numpy(depth)
    if isinstance(depth, torch.Tensor) and depth.ndim == 3:
        depth = depth[:, None]
    if not isinstance(depth, torch.Tensor) or depth.ndim != 4 or depth.shape[1] != 1:
        shape = tuple(depth.shape) if hasattr(depth, "shape") else type(depth).__name__
        raise TypeError(
            f"a depth model must return a DepthOutput (or tensor) of shape (B, 1, H, W), got {shape}"
        )
    return depth.float()


def flip_enabled(model: Any, flip: bool | None = None) -> bool:
    """Whether :func:`predict_batch` flip-averages: asked for, or the model's ``default_flip``."""
    return bool(flip) or bool(getattr(model, "default_flip", False))


def _model_device(model: Any) -> torch.device | None:
    if isinstance(model, torch.nn.Module):
        parameter = next(model.parameters(), None)
        if parameter is None:
            parameter = next(model.buffers(), None)
        return parameter.device if parameter is not None else None
    return None


@torch.no_grad()
def predict_batch(
    model: Any,
    images: torch.Tensor,
    *,
    flip: bool | None = None,
    input_size: tuple[int, int] | None = None,
    long_side: int | None = None,
) -> torch.Tensor:
    """Depth (B, 1, h, w) in metres at the working size for ``images`` (B, 3, H, W) RGB in [0, 1].

    ``input_size`` (else the model's ``fixed_input_size``) or ``long_side`` choose the working size
    (see :func:`working_size`); ``flip`` averages with the mirrored prediction (see
    :func:`flip_enabled`). Runs on the model's device without gradients; the caller sets eval mode.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise InputSizeError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
    if input_size is None:
        input_size = getattr(model, "fixed_input_size", None)
    size = working_size(images.shape[-2], images.shape[-1], long_side, input_size)
    device = _model_device(model)
    x = resize_image(images.float() if device is None else images.to(device).float(), size)
    depth = depth_of(model(x))
    if flip_enabled(model, flip):
        depth = 0.5 * (depth + depth_of(model(x.flip(-1))).flip(-1))
    return depth


# --------------------------------------------------------------------------------------------------
# the image path


def predict_depth(
    model: Any,
    images: ImageInput | Sequence[ImageInput],
    *,
    long_side: int | None = DEFAULT_LONG_SIDE,
    input_size: tuple[int, int] | None = None,
    flip: bool | None = None,
    batch_size: int = 4,
    device: str | torch.device | None = None,
) -> np.ndarray | list[np.ndarray]:
    """Metric depth (metres, ``float32`` (H, W), original size) for one image or a list of images.

    A single input gives one array, a list gives a list in the same order. ``long_side`` sets the
    working resolution (aspect kept, multiples of 32; None = the image's own size rounded), or
    ``input_size=(H, W)`` fixes it; ``flip`` averages with the horizontally flipped prediction.
    Models with a fixed input size (``model.fixed_input_size``, e.g. a static ONNX graph) use it.
    ``device`` moves a torch model there first (default: where it is); its training mode is restored.
    """
    single = not isinstance(images, (list, tuple))
    items = [images] if single else list(images)
    if input_size is None:
        input_size = getattr(model, "fixed_input_size", None)
    rgbs = [to_rgb_uint8(item) for item in items]
    results: list[np.ndarray | None] = [None] * len(rgbs)
    sizes = [working_size(rgb.shape[0], rgb.shape[1], long_side, input_size) for rgb in rgbs]
    step = max(1, batch_size)
    with _eval_on(model, device):
        for size in dict.fromkeys(sizes):
            indices = [i for i, s in enumerate(sizes) if s == size]
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                batch = torch.stack([_to_model_tensor(rgbs[i], size) for i in chunk])
                depth = predict_batch(model, batch, flip=flip, input_size=size)
                for row, index in enumerate(chunk):
                    results[index] = _restore_size(depth[row : row + 1], rgbs[index].shape[:2])
    return results[0] if single else results  # type: ignore[return-value]


def _restore_size(depth: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(1, 1, h, w) -> float32 (H, W) at the original size (bilinear, positive by construction)."""
    if tuple(depth.shape[-2:]) != tuple(size):
        depth = F.interpolate(depth, size=tuple(size), mode="bilinear", align_corners=False)
    return depth[0, 0].to(torch.float32).cpu().numpy()


@contextlib.contextmanager
def _eval_on(model: Any, device: str | torch.device | None) -> Iterator[None]:
    """Torch models run in eval mode (on ``device`` if given); their training mode is restored."""
    if not isinstance(model, torch.nn.Module):
        yield
        return
    if device is not None:
        model.to(device)
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------------------------------
# decoding what people have into upright RGB


def to_rgb_uint8(image: ImageInput) -> np.ndarray:
    """Any supported input -> upright RGB ``uint8`` (H, W, 3) (float inputs stay float, see below).

    Float arrays/tensors in [0, 1] are returned as float32 (H, W, 3) so that no precision is lost
    and no copy is made when they are already float; everything else becomes ``uint8``.
    """
    if isinstance(image, (str, os.PathLike)):
        from moa_depthclip.data.io import load_rgb

        return load_rgb(image)
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image)
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.ndim == 3 and tensor.shape[0] in (1, 3, 4) and tensor.shape[-1] not in (1, 3, 4):
            tensor = tensor.permute(1, 2, 0)  # CHW -> HWC
        image = tensor.numpy()
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    raise TypeError(
        f"cannot predict on a {type(image).__name__}: pass a PIL image, a NumPy array, a tensor or a path"
    )


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    image = ImageOps.exif_transpose(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("CMYK", "YCbCr", "LAB", "HSV", "1", "La", "RGBa", "PA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    elif image.mode == "LA":
        image = image.convert("RGBA")
    return _array_to_rgb(np.asarray(image))


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
        raise DataError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image array, got shape {array.shape}")
    if array.dtype == np.uint8:
        rgb, alpha, peak = array, None, 255.0
    elif array.dtype in (np.uint16, np.int32, np.int64, np.uint32):
        rgb, alpha, peak = array, None, 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise DataError("image array holds NaN or infinite values")
        rgb, alpha, peak = array, None, 1.0
    elif array.dtype == np.bool_:
        rgb, alpha, peak = array.astype(np.uint8) * 255, None, 255.0
    else:
        raise DataError(f"unsupported image array dtype {array.dtype}")
    if rgb.shape[2] == 4:
        rgb, alpha = rgb[:, :, :3], rgb[:, :, 3:]
    if peak == 255.0 and alpha is None:
        return np.ascontiguousarray(np.broadcast_to(rgb, (*rgb.shape[:2], 3)))
    if peak == 1.0 and alpha is None:
        values = np.clip(rgb.astype(np.float32, copy=False), 0.0, 1.0)
        return np.broadcast_to(values, (*values.shape[:2], 3))
    values = rgb.astype(np.float32) / peak
    if alpha is not None:  # composite on white, as the file reader does
        weight = np.clip(alpha.astype(np.float32) / peak, 0.0, 1.0)
        values = values * weight + (1.0 - weight)
    values = np.broadcast_to(np.clip(values, 0.0, 1.0), (*values.shape[:2], 3))
    return np.round(values * 255.0).astype(np.uint8)


def _to_model_tensor(rgb: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8/float image -> (3, h, w) float in [0, 1] at the working size.

    ``uint8`` images are resized by PIL *before* conversion (antialiased when shrinking), so no
    full-resolution float copy is ever made.
    """
    height, width = size
    if rgb.dtype == np.uint8:
        if rgb.shape[:2] != (height, width):
            rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))
        return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    array = np.ascontiguousarray(rgb, dtype=np.float32)
    with warnings.catch_warnings():  # read-only views are fine: the tensor is only read
        warnings.simplefilter("ignore", UserWarning)
        view = torch.from_numpy(array).permute(2, 0, 1)[None]
    return resize_image(view, (height, width))[0].clamp(0.0, 1.0)
