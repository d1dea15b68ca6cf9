"""Writing a depth prediction to files: 16-bit PNG, .npy, colour picture, side-by-side, point cloud.

Formats (names used by ``moa-depthclip predict --formats``):

=========  ==========================  ===========================================================
name       file                        content
=========  ==========================  ===========================================================
``png16``  ``<name>_depth.png``        uint16 millimetres (depth * 1000, rounded); values above
                                       65.535 m are clipped to 65535; 0 only where depth is invalid
``npy``    ``<name>_depth.npy``        float32 (H, W) metres, unclipped
``color``  ``<name>_depth_color.png``  colourised depth with a colour bar in metres
``side``   ``<name>_side.png``         image | colourised depth (with bar), at most 1024 px high
``ply``    ``<name>.ply``              point cloud: x, y, z metres (camera frame: x right, y down,
                                       z forward) and r, g, b; binary little-endian or ASCII
=========  ==========================  ===========================================================
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from moa_depthclip.data.cameras import Intrinsics
from moa_depthclip.visualize import DEFAULT_CMAP, colorize_with_bar, depth_range, make_panel

FORMATS = ("png16", "npy", "color", "side", "ply")
DEFAULT_FORMATS = ("png16", "npy", "color", "side")
SUFFIXES = {
    "png16": "_depth.png",
    "npy": "_depth.npy",
    "color": "_depth_color.png",
    "side": "_side.png",
    "ply": ".ply",
}
PNG16_MAX_METRES = 65.535
SIDE_MAX_HEIGHT = 1024
# Point clouds of very large images are subsampled to about this many points on the long side.
PLY_LONG_SIDE = 640


def depth_to_millimetres(depth: np.ndarray) -> np.ndarray:
    """Metres -> uint16 millimetres, clipped at 65.535 m; non-finite or <= 0 -> 0 (invalid)."""
    valid = np.isfinite(depth) & (depth > 0)
    millimetres = np.round(np.clip(np.where(valid, depth, 0.0), 0.0, PNG16_MAX_METRES) * 1000.0)
    return millimetres.astype(np.uint16)


def write_png16(path: Path, depth: np.ndarray) -> None:
    Image.fromarray(depth_to_millimetres(depth)).save(path)


def write_npy(path: Path, depth: np.ndarray) -> None:
    np.save(path, depth.astype(np.float32, copy=False))


def write_color(path: Path, depth: np.ndarray, vmin: float, vmax: float, cmap: str) -> None:
    Image.fromarray(colorize_with_bar(depth, vmin, vmax, cmap)).save(path)


def write_side(path: Path, image: np.ndarray, depth: np.ndarray, vmin: float, vmax: float, cmap: str) -> None:
    panel = make_panel(image, depth_pred=depth, vmin=vmin, vmax=vmax, cmap=cmap, max_height=SIDE_MAX_HEIGHT)
    Image.fromarray(panel).save(path)


def point_cloud(
    depth: np.ndarray, image: np.ndarray, intrinsics: Intrinsics, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Back-project valid pixels: (N, 3) float32 xyz in metres and (N, 3) uint8 colours."""
    rows = np.arange(0, depth.shape[0], stride)
    cols = np.arange(0, depth.shape[1], stride)
    z = depth[np.ix_(rows, cols)]
    u, v = np.meshgrid(cols.astype(np.float32), rows.astype(np.float32))
    valid = np.isfinite(z) & (z > 0)
    z = z[valid]
    x = (u[valid] - intrinsics.cx) * z / intrinsics.fx
    y = (v[valid] - intrinsics.cy) * z / intrinsics.fy
    colours = image[np.ix_(rows, cols)][valid]
    return np.stack([x, y, z], axis=1).astype(np.float32), colours.astype(np.uint8)


def write_ply(path: Path, points: np.ndarray, colours: np.ndarray, binary: bool = True) -> None:
    """A PLY point cloud with float x, y, z and uchar red, green, blue per vertex."""
    encoding = "binary_little_endian" if binary else "ascii"
    header = (
        f"ply\nformat {encoding} 1.0\ncomment metric depth point cloud, metres, camera frame "
        f"(x right, y down, z forward)\nelement vertex {len(points)}\nproperty float x\nproperty float y\n"
        f"property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    with open(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        if binary:
            record = np.dtype([("xyz", "<f4", (3,)), ("rgb", "u1", (3,))])
            vertices = np.empty(len(points), dtype=record)
            vertices["xyz"], vertices["rgb"] = points, colours
            handle.write(vertices.tobytes())
        else:
            for (x, y, z), (r, g, b) in zip(points, colours, strict=True):
                handle.write(f"{x:.5f} {y:.5f} {z:.5f} {r} {g} {b}\n".encode("ascii"))


def write_outputs(
    stem: Path,
    image: np.ndarray,
    depth: np.ndarray,
    formats: tuple[str, ...],
    *,
    cmap: str = DEFAULT_CMAP,
    vmin: float | None = None,
    vmax: float | None = None,
    intrinsics: Intrinsics | None = None,
    ply_binary: bool = True,
) -> dict[str, Path]:
    """Write ``depth`` (metres, same size as ``image``) in each format; returns {format: path}.

    ``stem`` is the output path without suffix (e.g. ``out/kitchen``); files are named
    ``stem + SUFFIXES[format]``. The colour range defaults to the 1st-99th percentile of the depth.
    """
    stem.parent.mkdir(parents=True, exist_ok=True)
    if vmin is None or vmax is None:
        auto_min, auto_max = depth_range(depth)
        vmin = auto_min if vmin is None else vmin
        vmax = auto_max if vmax is None else vmax
    written: dict[str, Path] = {}
    for name in formats:
        path = Path(f"{stem}{SUFFIXES[name]}")
        if name == "png16":
            write_png16(path, depth)
        elif name == "npy":
            write_npy(path, depth)
        elif name == "color":
            write_color(path, depth, vmin, vmax, cmap)
        elif name == "side":
            write_side(path, image, depth, vmin, vmax, cmap)
        elif name == "ply":
            camera = intrinsics or Intrinsics.nyu(*depth.shape)
            stride = max(1, math.ceil(max(depth.shape) / PLY_LONG_SIDE))
            points, colours = point_cloud(depth, image, camera, stride)
            write_ply(path, points, colours, binary=ply_binary)
        else:
            raise ValueError(f"unknown output format {name!r}; choose from {', '.join(FORMATS)}")
        written[name] = path
    return written
