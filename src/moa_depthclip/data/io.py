"""Robust readers and writers for RGB images and depth maps.

Every reader in the project goes through this module so that a bad file always fails the same way:
a :class:`~moa_depthclip.errors.DataError` whose message names the file and the problem.

Policy (what raises and what is masked):

=============================  =====================================================================
case                           behaviour
=============================  =====================================================================
missing / unreadable file      raise ``DataError``
corrupt or truncated image     raise ``DataError`` (a silently half-decoded image would poison metrics)
EXIF orientation               applied (``ImageOps.exif_transpose``), so pixels match what viewers show
grayscale / palette / CMYK     converted to RGB
alpha (RGBA, LA, PA)           composited on white: transparent regions of a photo are background,
                               and white is what viewers show; alpha carries no depth information
16-bit grayscale image         scaled to 8 bit with ``round(v * 255 / 65535)`` (not truncated)
float image with NaN/inf       raise ``DataError``
depth PNG not 16-bit 1-channel raise ``DataError`` (an 8-bit or RGB depth PNG is a conversion bug)
depth size != image size       raise ``DataError`` (:func:`check_same_size`)
depth NaN / inf / negative     masked to 0 (invalid) and counted: float depth files often use NaN
                               for "no measurement", and a few bad pixels should not stop a run
all-invalid depth              raise ``DataError`` unless ``allow_empty=True``
=============================  =====================================================================
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from moa_depthclip.data.validity import valid_depth_mask
from moa_depthclip.errors import DataError

PathLike = str | os.PathLike

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def _open_image(path: PathLike, what: str) -> Image.Image:
    """Open and fully decode an image, turning every failure into a DataError naming the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} file not found: {path}")
    if not path.is_file():
        raise DataError(f"{what} path is not a file: {path}")
    try:
        image = Image.open(path)
        image.load()  # decode now: truncation only shows up when the pixels are read
    except UnidentifiedImageError as error:
        raise DataError(f"{what} file is not a readable image (corrupt or unknown format): {path}") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{what} file is corrupt or truncated: {path} ({error})") from error
    return image


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """Map 0..65535 to 0..255 with rounding, so 65535 -> 255 and mid-grey stays mid-grey."""
    scaled = np.clip(values.astype(np.float64), 0, 65535) * (255.0 / 65535.0)
    return np.round(scaled).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def _composite_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def load_rgb(path: PathLike) -> np.ndarray:
    """Read any common image file as upright RGB ``uint8`` of shape (H, W, 3).

    See the module docstring for how each image mode is handled.
    """
    image = _open_image(path, "image")
    try:
        image = ImageOps.exif_transpose(image)
    except Exception as error:  # a malformed EXIF block must not crash a whole evaluation
        raise DataError(f"image file has unreadable EXIF orientation data: {path} ({error})") from error
    mode = image.mode
    if mode == "RGB":
        array = np.asarray(image, dtype=np.uint8)
    elif mode in _SIXTEEN_BIT_MODES or mode == "I":
        array = _gray_to_rgb(_sixteen_to_eight(np.asarray(image)))
    elif mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise DataError(f"image file holds NaN or infinite values: {path}")
        if values.max(initial=0.0) <= 1.0:
            values = values * 255.0
        array = _gray_to_rgb(np.round(np.clip(values, 0, 255)).astype(np.uint8))
    elif mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info):
        array = np.asarray(_composite_on_white(image), dtype=np.uint8)
    else:  # L, 1, P, CMYK, YCbCr, LAB, HSV, ...
        try:
            array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except (ValueError, OSError) as error:
            raise DataError(f"image file has an unsupported colour mode {mode!r}: {path}") from error
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"image file decoded to an unexpected shape {array.shape}: {path}")
    return np.require(array, dtype=np.uint8, requirements=["C", "W"])  # writable: torch.from_numpy needs it


def sanitize_depth(depth: np.ndarray, path: PathLike, allow_empty: bool = False) -> tuple[np.ndarray, int]:
    """Mask NaN, infinite and negative depths to 0 (invalid); return the map and how many were masked.

    Raises ``DataError`` when no valid (> 0) pixel is left, unless ``allow_empty``.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise DataError(f"depth map must be 2-D (H, W), got shape {depth.shape}: {path}")
    bad = ~valid_depth_mask(depth) & (depth != 0)
    num_bad = int(bad.sum())
    if num_bad:
        depth = np.where(bad, np.float32(0.0), depth)
    if not allow_empty and not valid_depth_mask(depth).any():
        raise DataError(f"depth map has no valid pixel (all zero, NaN or negative): {path}")
    return depth, num_bad


def load_depth_png(path: PathLike, scale: float, allow_empty: bool = False) -> np.ndarray:
    """Read a 16-bit single-channel depth PNG as float32 metres: ``value / scale`` (0 = invalid).

    ``scale`` is 1000 for NYU (millimetres) and 256 for KITTI.
    """
    if scale <= 0:
        raise ValueError(f"depth scale must be positive, got {scale}")
    image = _open_image(path, "depth")
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.min(initial=0) < 0 or values.max(initial=0) > 65535:
            raise DataError(f"depth file holds values outside the 16-bit range (mode {mode}): {path}")
    elif mode in ("L", "P", "1"):
        raise DataError(
            f"depth file is an 8-bit image (mode {mode}); depth PNGs must be 16-bit single-channel "
            f"(uint16, metres * {scale:g}): {path}"
        )
    else:
        raise DataError(
            f"depth file has {len(image.getbands())} channels (mode {mode}); depth PNGs must be 16-bit "
            f"single-channel (uint16, metres * {scale:g}): {path}"
        )
    depth, _ = sanitize_depth(stored_to_metres(values, scale), path, allow_empty=allow_empty)
    return depth


def stored_to_metres(values: np.ndarray, scale: float) -> np.ndarray:
    """Integer depth as stored in 16-bit files -> float32 metres (``value / scale``, 0 stays 0).

    The one conversion for every 16-bit source (PNG files and the NYU ``.mat`` raw depths), so the
    same millimetres give bit-identical metres whichever file they came from.
    """
    return (np.asarray(values).astype(np.float64) / scale).astype(np.float32)


def load_depth(path: PathLike, scale: float = 1.0, allow_empty: bool = False) -> np.ndarray:
    """Read a depth map from a 16-bit PNG (divided by ``scale``) or a ``.npy`` file (metres as stored)."""
    return read_depth(path, scale, allow_empty)[0]


def read_depth(path: PathLike, scale: float = 1.0, allow_empty: bool = False) -> tuple[np.ndarray, int]:
    """:func:`load_depth` and the number of NaN / infinite / negative pixels it masked to 0."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise DataError(f"depth file not found: {path}")
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(f"depth file is corrupt or not a numpy array: {path} ({error})") from error
        return sanitize_depth(np.squeeze(array), path, allow_empty=allow_empty)
    return load_depth_png(path, scale, allow_empty=allow_empty), 0  # integers: nothing to mask


def check_same_size(image: np.ndarray, depth: np.ndarray, image_path: PathLike, depth_path: PathLike) -> None:
    """Raise ``DataError`` when an image and its depth map do not have the same height and width."""
    if image.shape[:2] != depth.shape[:2]:
        raise DataError(
            f"depth map {depth.shape[0]}x{depth.shape[1]} ({depth_path}) does not match its image "
            f"{image.shape[0]}x{image.shape[1]} ({image_path})"
        )


def save_depth_png(path: PathLike, depth: np.ndarray, scale: float) -> None:
    """Write metres as a 16-bit PNG of ``round(depth * scale)``; invalid (<= 0 or non-finite) -> 0."""
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    values = np.where(valid, np.round(depth * scale), 0)
    if values.max(initial=0) > 65535:
        raise ValueError(f"depth {depth[valid].max():.3f} m does not fit a 16-bit PNG at scale {scale:g}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint16)).save(path)


def save_rgb(path: PathLike, image: np.ndarray, quality: int = 95) -> None:
    """Write an RGB ``uint8`` (H, W, 3) image; JPEG quality applies to .jpg/.jpeg paths."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(image)
    if str(path).lower().endswith((".jpg", ".jpeg")):
        pil.save(path, quality=quality)
    else:
        pil.save(path)
