"""Pictures of depth: colour maps, a colour bar in metres, and side-by-side panels.

The colour maps are computed here (no plotting dependency) from a few control points in OKLab, a
perceptual colour space, so that equal steps in depth look like roughly equal steps in colour:

* ``lumen``    (default) lightness rises monotonically from deep violet through red and orange to
               pale yellow; readable in grayscale print and by colour-blind readers.
* ``spectrum`` a hue sweep (blue, cyan, green, yellow, red) for maximum contrast between nearby depths.
* ``gray``     plain lightness.

By default near is bright and far is dark (``near_bright=True``), which is how people usually read
depth pictures. Invalid pixels (0, NaN, inf) are drawn in ``invalid_color``.

Everything here works on NumPy arrays (``uint8`` (H, W, 3) images, float (H, W) depth in metres) and
also accepts torch tensors ((3, H, W) images in [0, 1], (1, H, W) or (H, W) depth), so the same
functions serve the prediction CLI, TensorBoard and report figures.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLORMAPS = ("lumen", "spectrum", "gray")
INVALID_COLOR = (40, 40, 40)

# Control points in OKLCh: (lightness, chroma, hue in degrees), evenly spaced along the map.
_CONTROL_POINTS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "lumen": (
        (0.18, 0.08, 300.0),
        (0.35, 0.17, 320.0),
        (0.52, 0.20, 15.0),
        (0.68, 0.18, 50.0),
        (0.82, 0.16, 75.0),
        (0.96, 0.09, 100.0),
    ),
    "spectrum": (
        (0.35, 0.16, 275.0),
        (0.62, 0.15, 235.0),
        (0.78, 0.14, 185.0),
        (0.83, 0.18, 135.0),
        (0.90, 0.17, 100.0),
        (0.74, 0.17, 55.0),
        (0.55, 0.19, 25.0),
    ),
    "gray": ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0)),
}


def _oklab_to_linear_srgb(lab: np.ndarray) -> np.ndarray:
    """OKLab (N, 3) -> linear sRGB (N, 3), the published OKLab matrices."""
    to_lms = np.array(
        [
            [1.0, 0.3963377774, 0.2158037573],
            [1.0, -0.1055613458, -0.0638541728],
            [1.0, -0.0894841775, -1.2914855480],
        ]
    )
    to_rgb = np.array(
        [
            [4.0767416621, -3.3077115913, 0.2309699292],
            [-1.2684380046, 2.6097574011, -0.3413193965],
            [-0.0041960863, -0.7034186147, 1.7076147010],
        ]
    )
    lms = (lab @ to_lms.T) ** 3
    return lms @ to_rgb.T


def _linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def _lch_to_srgb_in_gamut(lightness: float, chroma: float, hue: float) -> np.ndarray:
    """Convert one OKLCh colour to sRGB, reducing chroma until it fits (lightness stays exact)."""
    angle = math.radians(hue)

    def linear(c: float) -> np.ndarray:
        return _oklab_to_linear_srgb(np.array([[lightness, c * math.cos(angle), c * math.sin(angle)]]))[0]

    def fits(c: float) -> bool:
        rgb = linear(c)
        return bool(np.all(rgb >= -1e-6) and np.all(rgb <= 1 + 1e-6))

    if not fits(chroma):
        low, high = 0.0, chroma
        for _ in range(24):  # bisection on chroma
            middle = 0.5 * (low + high)
            low, high = (middle, high) if fits(middle) else (low, middle)
        chroma = low
    return _linear_to_srgb(linear(chroma))


@cache
def colormap(name: str = "lumen", size: int = 256) -> np.ndarray:
    """A (size, 3) ``uint8`` lookup table, index 0 = low value."""
    if name not in _CONTROL_POINTS:
        raise ValueError(f"unknown colour map {name!r}; choose one of {', '.join(COLORMAPS)}")
    points = np.array(_CONTROL_POINTS[name], dtype=np.float64)
    positions = np.linspace(0.0, 1.0, len(points))
    samples = np.linspace(0.0, 1.0, size)
    # Interpolate hue along the shorter arc so that e.g. 320 -> 15 degrees passes through 0.
    hues = np.degrees(np.unwrap(np.radians(points[:, 2])))
    lightness = np.interp(samples, positions, points[:, 0])
    chroma = np.interp(samples, positions, points[:, 1])
    hue = np.interp(samples, positions, hues)
    table = np.stack([_lch_to_srgb_in_gamut(*lch) for lch in zip(lightness, chroma, hue, strict=True)])
    table = np.round(table * 255).astype(np.uint8)
    table.setflags(write=False)
    return table


# --------------------------------------------------------------------------------------------------
# conversions


def to_image_array(image: Any) -> np.ndarray:
    """An RGB picture as ``uint8`` (H, W, 3): accepts uint8/float arrays (HWC or CHW) and tensors."""
    array = _to_numpy(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3):
        array = array.transpose(1, 2, 0)  # CHW -> HWC
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.dtype != np.uint8:
        array = np.round(np.clip(array.astype(np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    return np.ascontiguousarray(array[:, :, :3])


def to_depth_array(depth: Any) -> np.ndarray:
    """Depth as float32 (H, W); accepts (H, W), (1, H, W), (1, 1, H, W) arrays or tensors."""
    array = _to_numpy(depth).astype(np.float32, copy=False)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"expected a single depth map (H, W), got shape {array.shape}")
    return array


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensor, without importing torch here
        value = value.detach().cpu().float().numpy()
    elif isinstance(value, Image.Image):
        value = np.asarray(value.convert("RGB"))
    return np.asarray(value)


def valid_mask(depth: np.ndarray) -> np.ndarray:
    return np.isfinite(depth) & (depth > 0)


def depth_range(*depths: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """A robust display range over the valid pixels of the given maps (percentiles, metres)."""
    values = [d[valid_mask(d)] for d in depths if d is not None]
    values = [v for v in values if v.size]
    if not values:
        return 0.0, 1.0
    merged = np.concatenate([v[:: max(1, v.size // 200_000)] for v in values])  # subsample big maps
    vmin, vmax = (float(x) for x in np.percentile(merged, [low, high]))
    if vmax - vmin < 1e-6:
        vmin, vmax = vmin - 0.5 * max(vmin, 1e-3), vmax + 0.5 * max(vmax, 1e-3)
    return max(vmin, 0.0), vmax


# --------------------------------------------------------------------------------------------------
# colourising


def colorize(
    depth: Any,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "lumen",
    near_bright: bool = True,
    invalid_color: tuple[int, int, int] = INVALID_COLOR,
) -> np.ndarray:
    """Depth (metres) -> ``uint8`` (H, W, 3) picture. Missing vmin/vmax come from :func:`depth_range`."""
    depth = to_depth_array(depth)
    if vmin is None or vmax is None:
        auto_min, auto_max = depth_range(depth)
        vmin = auto_min if vmin is None else vmin
        vmax = auto_max if vmax is None else vmax
    table = colormap(cmap)
    scale = (len(table) - 1) / max(vmax - vmin, 1e-12)
    valid = valid_mask(depth)
    index = np.clip((np.where(valid, depth, vmin) - vmin) * scale, 0, len(table) - 1).astype(np.intp)
    if near_bright:
        index = len(table) - 1 - index
    picture = table[index]
    picture[~valid] = invalid_color
    return picture


def nice_ticks(vmin: float, vmax: float, target: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 x 10^k) inside [vmin, vmax]."""
    span = vmax - vmin
    if span <= 0:
        return [vmin]
    raw = span / max(target - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(vmin / step - 1e-9) * step
    ticks = []
    value = first
    while value <= vmax + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _tick_label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 2
    return f"{value:.{min(decimals, 3)}f}"


def colorbar(
    height: int,
    vmin: float,
    vmax: float,
    cmap: str = "lumen",
    near_bright: bool = True,
    width: int | None = None,
    unit: str = "m",
) -> np.ndarray:
    """A vertical colour bar (``uint8`` (height, width, 3)) with tick labels, small values on top."""
    font_size = max(10, min(18, height // 25))
    width = width if width is not None else 5 * font_size + 24
    bar_width = max(8, font_size)
    margin = font_size  # room for the unit label above and half a label below
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = _font(font_size)
    top, bottom = margin + 2, max(margin + 3, height - margin // 2 - 2)
    table = colormap(cmap)
    rows = np.linspace(0, len(table) - 1, bottom - top).astype(np.intp)
    if near_bright:
        rows = len(table) - 1 - rows
    strip = np.repeat(table[rows][:, None, :], bar_width, axis=1)
    canvas.paste(Image.fromarray(strip), (4, top))
    draw.rectangle((4, top, 4 + bar_width - 1, bottom - 1), outline=(0, 0, 0))
    draw.text((4, 1), unit, fill=(0, 0, 0), font=font)
    ticks = nice_ticks(vmin, vmax, target=max(2, min(8, (bottom - top) // (3 * font_size))))
    step = ticks[1] - ticks[0] if len(ticks) > 1 else max(vmax - vmin, 1e-3)
    for value in ticks:
        y = top + (value - vmin) / max(vmax - vmin, 1e-12) * (bottom - top - 1)
        draw.line((4 + bar_width, y, 8 + bar_width, y), fill=(0, 0, 0))
        draw.text((11 + bar_width, y - font_size / 2), _tick_label(value, step), fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def colorize_with_bar(
    depth: Any,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "lumen",
    near_bright: bool = True,
) -> np.ndarray:
    """The colourised depth with its colour bar (metres) on the right."""
    depth = to_depth_array(depth)
    if vmin is None or vmax is None:
        auto_min, auto_max = depth_range(depth)
        vmin = auto_min if vmin is None else vmin
        vmax = auto_max if vmax is None else vmax
    picture = colorize(depth, vmin, vmax, cmap, near_bright)
    bar = colorbar(picture.shape[0], vmin, vmax, cmap, near_bright)
    return np.concatenate([picture, bar], axis=1)


# --------------------------------------------------------------------------------------------------
# panels


def side_by_side(pictures: list[np.ndarray], gap: int = 4, background: int = 255) -> np.ndarray:
    """Tiles of possibly different sizes in one row; each is resized to the first tile's height."""
    height = pictures[0].shape[0]
    tiles = []
    for picture in pictures:
        picture = to_image_array(picture)
        if picture.shape[0] != height:
            new_width = max(1, round(picture.shape[1] * height / picture.shape[0]))
            picture = np.asarray(
                Image.fromarray(picture).resize((new_width, height), Image.Resampling.BILINEAR)
            )
        tiles.append(picture)
        tiles.append(np.full((height, gap, 3), background, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def titled(picture: np.ndarray, title: str) -> np.ndarray:
    """``picture`` with a white strip holding ``title`` above it."""
    font_size = max(10, min(20, picture.shape[1] // 20))
    strip = Image.new("RGB", (picture.shape[1], font_size + 8), (255, 255, 255))
    ImageDraw.Draw(strip).text((4, 3), title, fill=(0, 0, 0), font=_font(font_size))
    return np.concatenate([np.asarray(strip), picture], axis=0)


def make_panel(
    image: Any,
    depth_gt: Any | None = None,
    depth_pred: Any | None = None,
    *,
    error: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "lumen",
    titles: dict[str, str] | None = None,
    max_height: int | None = 480,
) -> np.ndarray:
    """One row: image | ground truth | prediction | absolute error, each with what it needs.

    Any of ``depth_gt`` / ``depth_pred`` may be None (e.g. image | prediction for plain inference);
    the error tile needs both. GT and prediction share one colour range (from the GT's valid pixels
    when there is a GT) and one colour bar; the error tile has its own bar. Depth maps are resized to
    the image size (nearest, so invalid GT pixels stay invalid). ``titles`` overrides the tile titles
    (keys ``image``, ``gt``, ``pred``, ``error``); pass ``{}`` for defaults, None for no titles at all.
    ``max_height`` shrinks large inputs first so panels stay a reasonable size.
    """
    picture = to_image_array(image)
    if max_height is not None and picture.shape[0] > max_height:
        new_width = max(1, round(picture.shape[1] * max_height / picture.shape[0]))
        picture = np.asarray(
            Image.fromarray(picture).resize((new_width, max_height), Image.Resampling.BILINEAR)
        )
    size = picture.shape[:2]
    gt = _fit(to_depth_array(depth_gt), size) if depth_gt is not None else None
    pred = _fit(to_depth_array(depth_pred), size) if depth_pred is not None else None
    if vmin is None or vmax is None:
        auto_min, auto_max = depth_range(gt if gt is not None else pred)
        vmin = auto_min if vmin is None else vmin
        vmax = auto_max if vmax is None else vmax

    names = {"image": "image", "gt": "ground truth (m)", "pred": "prediction (m)", "error": "|error| (m)"}
    if titles:
        names.update(titles)
    tiles: list[tuple[str, np.ndarray]] = [("image", picture)]
    if gt is not None:
        tiles.append(("gt", colorize(gt, vmin, vmax, cmap)))
    if pred is not None:
        tiles.append(("pred", colorize(pred, vmin, vmax, cmap)))
    if gt is not None or pred is not None:
        tiles[-1] = (
            tiles[-1][0],
            np.concatenate([tiles[-1][1], colorbar(size[0], vmin, vmax, cmap)], axis=1),
        )
    if error and gt is not None and pred is not None:
        valid = valid_mask(gt) & valid_mask(pred)
        difference = np.where(valid, np.abs(pred - gt), np.nan).astype(np.float32)
        emax = float(np.nanpercentile(difference, 99)) if valid.any() else 1.0
        emax = max(emax, 1e-3)
        error_picture = colorize(
            np.where(valid, difference + 1e-9, np.nan), 0.0, emax, "lumen", near_bright=False
        )
        bar = colorbar(size[0], 0.0, emax, "lumen", near_bright=False)
        tiles.append(("error", np.concatenate([error_picture, bar], axis=1)))
    if titles is not None:
        tiles = [(key, titled(tile, names[key])) for key, tile in tiles]
    return side_by_side([tile for _, tile in tiles])


def _fit(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if depth.shape == tuple(size):
        return depth
    resized = Image.fromarray(np.ascontiguousarray(depth, dtype=np.float32)).resize(
        (size[1], size[0]), Image.Resampling.NEAREST
    )
    return np.asarray(resized, dtype=np.float32)


def plot_curves(
    series: dict[str, list[tuple[float, float]]], out: Any, xlabel: str = "step", width: int = 720
) -> None:
    """Save one line chart per named series of (x, y) points, stacked, as a PNG (training curves)."""
    rows = [(name, points) for name, points in series.items() if points]
    if not rows:
        raise ValueError("plot_curves needs at least one non-empty series")
    row_height, margin = 300, 56
    picture = Image.new("RGB", (width, row_height * len(rows)), "white")
    draw = ImageDraw.Draw(picture)
    font = _font(12)
    palette = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    for row, (name, points) in enumerate(rows):
        top, bottom = row * row_height + 30, (row + 1) * row_height - margin
        left, right = margin + 10, width - 20
        xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
        x0, x1 = min(xs), max(max(xs), min(xs) + 1)
        y0, y1 = min(ys), max(ys)
        if math.isclose(y0, y1):
            y0, y1 = y0 - 0.5, y1 + 0.5
        colour = palette[row % len(palette)]
        draw.rectangle([left, top, right, bottom], outline=(160, 160, 160))
        draw.text((left, top - 18), name, fill=(0, 0, 0), font=font)
        draw.text((4, top), f"{y1:.3g}", fill=(0, 0, 0), font=font)
        draw.text((4, bottom - 10), f"{y0:.3g}", fill=(0, 0, 0), font=font)
        draw.text((left, bottom + 6), f"{xlabel} {x0:g}", fill=(0, 0, 0), font=font)
        draw.text((right - 90, bottom + 6), f"{xlabel.split()[-1]} {x1:g}", fill=(0, 0, 0), font=font)
        coords = [
            (left + (right - left) * (x - x0) / (x1 - x0), bottom - (bottom - top) * (y - y0) / (y1 - y0))
            for x, y in zip(xs, ys, strict=True)
        ]
        if len(coords) > 1:
            draw.line(coords, fill=colour, width=2)
        for x, y in coords:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    picture.save(out)
