"""Pictures of depth, drawn with matplotlib: colour maps, colour bars in metres, panels, curves.

* Colour maps: any matplotlib colour-map name (``matplotlib.colormaps``). The default,
  :data:`DEFAULT_CMAP` = ``magma``, is perceptually uniform (equal depth steps look like equal colour
  steps), rises monotonically in lightness (readable in grayscale print and by colour-blind
  readers) and, drawn near = bright, looks like the usual depth pictures. :data:`ERROR_CMAP`
  (``viridis``, small error dark) colours absolute-error maps so they are not mistaken for depth.
* Colour bars are matplotlib colour bars with at least three ticks in metres (:func:`nice_ticks`,
  matplotlib's ``MaxNLocator``), whatever the picture's size.
* Panels (image | ground truth | prediction | error) and training curves are matplotlib figures
  with titles, units, axes and grids, rendered off-screen by the Agg backend on a
  ``matplotlib.figure.Figure`` of their own: nothing here touches pyplot's global state.

Every function takes NumPy arrays (``uint8`` (H, W, 3) images, float (H, W) depth in metres) and
also torch tensors ((3, H, W) images in [0, 1], (1, H, W) or (H, W) depth), so the same functions
serve the prediction command, the web app, TensorBoard and reports. Depth pixels are coloured one
to one (:func:`colorize`); only the decorations around them are drawn by matplotlib. Invalid pixels
(0, NaN, inf) are drawn in ``invalid_color``. matplotlib is imported on first use, so importing this
module stays cheap for the command line.
"""

from __future__ import annotations

import difflib
import io
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from moa_depthclip.data.validity import valid_depth_mask
from moa_depthclip.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

DEFAULT_CMAP = "magma"
ERROR_CMAP = "viridis"
#: A few good choices, shown in help texts; any matplotlib colour-map name works.
SUGGESTED_COLORMAPS = ("magma", "inferno", "viridis", "cividis", "turbo", "Spectral_r", "gray")
INVALID_COLOR = (128, 128, 128)
LIST_COLORMAPS = 'python -c "import matplotlib; print(sorted(matplotlib.colormaps))"'
DPI = 100
MIN_TICKS = 3


@dataclass
class Rendered:
    """A rendered picture and the tick values of its colour bars (metres), by bar name."""

    image: np.ndarray
    ticks: dict[str, list[float]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# colour maps


def check_colormap(name: str) -> str:
    """``name`` if matplotlib knows the colour map, else a one-line :class:`ConfigError`."""
    import matplotlib

    if name in matplotlib.colormaps:
        return name
    close = difflib.get_close_matches(name, list(matplotlib.colormaps), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ConfigError(
        f"unknown colour map {name!r}{hint}: use any matplotlib colour-map name, e.g. "
        f"{', '.join(SUGGESTED_COLORMAPS)}; list them all with: {LIST_COLORMAPS}"
    )


@cache
def _mpl_colormap(name: str, near_bright: bool) -> Colormap:
    """The matplotlib colour map; reversed for ``near_bright`` so that near (small depth) gets the
    map's high end (the bright end of the sequential maps, red for ``Spectral_r``)."""
    import matplotlib

    cmap = matplotlib.colormaps[check_colormap(name)]
    return cmap.reversed() if near_bright else cmap


@cache
def colormap(name: str = DEFAULT_CMAP, size: int = 256) -> np.ndarray:
    """A (size, 3) ``uint8`` lookup table of a matplotlib colour map, index 0 = low value."""
    import matplotlib

    table = matplotlib.colormaps[check_colormap(name)].resampled(size)(
        np.linspace(0.0, 1.0, size), bytes=True
    )
    table = np.ascontiguousarray(table[:, :3])
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


def depth_range(*depths: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """A robust display range over the valid pixels of the given maps (percentiles, metres)."""
    values = [d[valid_depth_mask(d)] for d in depths if d is not None]
    values = [v for v in values if v.size]
    if not values:
        return 0.0, 1.0
    merged = np.concatenate([v[:: max(1, v.size // 200_000)] for v in values])  # subsample big maps
    vmin, vmax = (float(x) for x in np.percentile(merged, [low, high]))
    if vmax - vmin < 1e-6:
        vmin, vmax = vmin - 0.5 * max(vmin, 1e-3), vmax + 0.5 * max(vmax, 1e-3)
    return max(vmin, 0.0), vmax


def _resolve_range(depth: np.ndarray, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    if vmin is None or vmax is None:
        auto_min, auto_max = depth_range(depth)
        vmin = auto_min if vmin is None else vmin
        vmax = auto_max if vmax is None else vmax
    if not vmax > vmin:
        raise ConfigError(f"colour range: vmax ({vmax}) must be greater than vmin ({vmin})")
    return float(vmin), float(vmax)


# --------------------------------------------------------------------------------------------------
# colourising


def colorize(
    depth: Any,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = DEFAULT_CMAP,
    near_bright: bool = True,
    invalid_color: tuple[int, int, int] = INVALID_COLOR,
) -> np.ndarray:
    """Depth (metres) -> ``uint8`` (H, W, 3) picture, pixel for pixel. Missing vmin/vmax: 1st-99th
    percentile of the valid depth (:func:`depth_range`)."""
    depth = to_depth_array(depth)
    vmin, vmax = _resolve_range(depth, vmin, vmax)
    mapped = _mpl_colormap(cmap, near_bright)
    valid = valid_depth_mask(depth)
    scaled = np.clip((np.where(valid, depth, vmin) - vmin) / (vmax - vmin), 0.0, 1.0)
    picture = np.ascontiguousarray(mapped(scaled, bytes=True)[..., :3])
    picture[~valid] = invalid_color
    return picture


def nice_ticks(vmin: float, vmax: float, target: int = 5) -> list[float]:
    """Round tick values inside [vmin, vmax], at least three of them (matplotlib's MaxNLocator)."""
    from matplotlib.ticker import MaxNLocator

    if not vmax > vmin:
        return [float(vmin)]
    ticks: list[float] = []
    for bins in range(max(target - 1, 2), 16):
        values = MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10], min_n_ticks=MIN_TICKS).tick_values(
            vmin, vmax
        )
        tolerance = 1e-9 * (vmax - vmin)
        ticks = [float(round(v, 12)) for v in values if vmin - tolerance <= v <= vmax + tolerance]
        if len(ticks) >= MIN_TICKS:
            break
    return ticks


def _font_points(pixels: int) -> float:
    """A font size (points) that stays readable: about 1/22 of the picture height, 7 to 16 pt."""
    return float(np.clip(pixels / 22.0, 7.0, 16.0))


def _label_width(ticks: list[float], font_pt: float) -> int:
    """Pixels needed right of a bar for tick labels and the rotated unit label."""
    font_px = font_pt * DPI / 72.0
    longest = max((len(_format_tick(t, ticks)) for t in ticks), default=4)
    return int(math.ceil(6 + longest * 0.62 * font_px + 6 + 1.4 * font_px + 4))


def _format_tick(value: float, ticks: list[float]) -> str:
    step = min((abs(b - a) for a, b in zip(ticks, ticks[1:], strict=False)), default=1.0) or 1.0
    decimals = min(4, max(0, -math.floor(math.log10(step) + 1e-9)))
    if step * 10**decimals % 1 > 1e-6:  # steps like 2.5 need one more digit
        decimals += 1
    return f"{value:.{decimals}f}"


def _draw_colorbar(
    figure: Figure,
    box_px: tuple[float, float, float, float],
    vmin: float,
    vmax: float,
    cmap: str,
    near_bright: bool,
    label: str,
    font_pt: float,
) -> list[float]:
    """A colour bar in ``box_px`` (left, bottom, width, height in figure pixels); returns its ticks."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.ticker import FixedFormatter, FixedLocator

    width, height = figure.get_size_inches() * DPI
    left, bottom, bar_width, bar_height = box_px
    axes = figure.add_axes((left / width, bottom / height, bar_width / width, bar_height / height))
    mappable = ScalarMappable(Normalize(vmin, vmax), _mpl_colormap(cmap, near_bright))
    bar = figure.colorbar(mappable, cax=axes)
    ticks = nice_ticks(vmin, vmax, target=max(MIN_TICKS, min(7, int(bar_height // (3.2 * font_pt)))))
    bar.ax.yaxis.set_major_locator(FixedLocator(ticks))
    bar.ax.yaxis.set_major_formatter(FixedFormatter([_format_tick(t, ticks) for t in ticks]))
    bar.ax.tick_params(labelsize=font_pt, length=3, pad=2)
    bar.ax.minorticks_off()
    bar.set_label(label, fontsize=font_pt, labelpad=2)
    bar.outline.set_linewidth(0.6)
    return ticks


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render a figure with the Agg backend to ``uint8`` (H, W, 3), without pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[:, :, :3])


def _figure(width_px: float, height_px: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor="white")


def render_colorbar(
    height: int,
    vmin: float,
    vmax: float,
    cmap: str = DEFAULT_CMAP,
    near_bright: bool = True,
    width: int | None = None,
    label: str = "depth (m)",
) -> Rendered:
    """A vertical colour bar picture ``(height, width, 3)`` with its ticks (``ticks["bar"]``)."""
    font_pt = _font_points(height)
    font_px = font_pt * DPI / 72.0
    bar_width = max(8, int(round(0.9 * font_px)))
    top, bottom = 0.7 * font_px, 0.7 * font_px
    ticks = nice_ticks(vmin, vmax)
    width = width if width is not None else 4 + bar_width + _label_width(ticks, font_pt)
    figure = _figure(width, height)
    ticks = _draw_colorbar(
        figure,
        (4, bottom, bar_width, max(1.0, height - top - bottom)),
        vmin,
        vmax,
        cmap,
        near_bright,
        label,
        font_pt,
    )
    picture = figure_to_array(figure)
    return Rendered(picture[:height, :width], {"bar": ticks})


def colorbar(
    height: int,
    vmin: float,
    vmax: float,
    cmap: str = DEFAULT_CMAP,
    near_bright: bool = True,
    width: int | None = None,
    label: str = "depth (m)",
) -> np.ndarray:
    """A vertical colour bar (``uint8`` (height, width, 3)) with tick labels in metres."""
    return render_colorbar(height, vmin, vmax, cmap, near_bright, width, label).image


def colorize_with_bar(
    depth: Any,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = DEFAULT_CMAP,
    near_bright: bool = True,
) -> np.ndarray:
    """The colourised depth (pixel for pixel) with its colour bar in metres on the right."""
    depth = to_depth_array(depth)
    vmin, vmax = _resolve_range(depth, vmin, vmax)
    picture = colorize(depth, vmin, vmax, cmap, near_bright)
    bar = colorbar(picture.shape[0], vmin, vmax, cmap, near_bright)
    return np.concatenate([picture, bar], axis=1)


# --------------------------------------------------------------------------------------------------
# panels


def side_by_side(pictures: list[np.ndarray], gap: int = 4, background: int = 255) -> np.ndarray:
    """Tiles of possibly different sizes in one row; each is resized to the first tile's height."""
    height = to_image_array(pictures[0]).shape[0]
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


def render_panel(
    image: Any,
    depth_gt: Any | None = None,
    depth_pred: Any | None = None,
    *,
    error: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = DEFAULT_CMAP,
    titles: dict[str, str] | None = None,
    max_height: int | None = 480,
    min_height: int = 200,
) -> Rendered:
    """One row image | ground truth | prediction | absolute error; ticks under ``depth``/``error``.

    Any of ``depth_gt`` / ``depth_pred`` may be None (image | prediction for plain inference); the
    error tile needs both. GT and prediction share one colour range (the GT's valid pixels when there
    is a GT) and one colour bar; the error tile has its own. Depth maps are resized to the image
    (nearest, so invalid GT pixels stay invalid). Tiles are shown between ``min_height`` (small
    inputs are enlarged so that text stays readable) and ``max_height`` pixels high. ``titles``
    overrides the tile titles (keys ``image``, ``gt``, ``pred``, ``error``); ``{}`` keeps the
    defaults, None drops the titles.
    """
    picture = to_image_array(image)
    size = picture.shape[:2]
    gt = _fit(to_depth_array(depth_gt), size) if depth_gt is not None else None
    pred = _fit(to_depth_array(depth_pred), size) if depth_pred is not None else None
    reference = gt if gt is not None else pred
    vmin, vmax = _resolve_range(reference if reference is not None else np.ones((1, 1)), vmin, vmax)

    names = {"image": "image", "gt": "ground truth", "pred": "prediction", "error": "|error|"}
    if titles:
        names.update(titles)
    tiles: list[tuple[str, np.ndarray]] = [("image", picture)]
    if gt is not None:
        tiles.append(("gt", colorize(gt, vmin, vmax, cmap)))
    if pred is not None:
        tiles.append(("pred", colorize(pred, vmin, vmax, cmap)))
    bars: dict[str, tuple[float, float, str, bool, str]] = {}
    if gt is not None or pred is not None:
        bars[tiles[-1][0]] = (vmin, vmax, cmap, True, "depth (m)")
    if error and gt is not None and pred is not None:
        valid = valid_depth_mask(gt) & valid_depth_mask(pred)
        difference = np.where(valid, np.abs(pred - gt), np.nan).astype(np.float32)
        emax = max(float(np.nanpercentile(difference, 99)) if valid.any() else 1.0, 1e-3)
        tiles.append(
            ("error", colorize(np.where(valid, difference + 1e-9, np.nan), 0.0, emax, ERROR_CMAP, False))
        )
        bars["error"] = (0.0, emax, ERROR_CMAP, False, "|error| (m)")

    shown = float(
        np.clip(size[0], min_height, max_height if max_height is not None else max(size[0], min_height))
    )
    scale = shown / size[0]
    font_pt = _font_points(int(shown))
    font_px = font_pt * DPI / 72.0
    title_band = 1.9 * font_px if titles is not None else 0.0
    gap, pad = 0.6 * font_px, 0.5 * font_px
    bar_width = max(8.0, 0.9 * font_px)
    tile_width = size[1] * scale
    label_room = {key: _label_width(nice_ticks(low, high), font_pt) for key, (low, high, *_) in bars.items()}
    width = (
        pad
        + sum(tile_width + gap + (bar_width + 4 + label_room[k] if k in bars else 0) for k, _ in tiles)
        - gap
        + pad
    )
    height = pad + shown + title_band + pad
    figure = _figure(math.ceil(width), math.ceil(height))
    figure_width, figure_height = figure.get_size_inches() * DPI
    ticks: dict[str, list[float]] = {}
    left = pad
    for key, tile in tiles:
        axes = figure.add_axes(
            (left / figure_width, pad / figure_height, tile_width / figure_width, shown / figure_height)
        )
        axes.imshow(tile, interpolation="nearest" if key != "image" else "antialiased", aspect="auto")
        axes.set_axis_off()
        if titles is not None:
            axes.set_title(names[key], fontsize=font_pt, pad=0.3 * font_px)
        left += tile_width
        if key in bars:
            low, high, bar_cmap, near_bright, label = bars[key]
            box = (left + 4, pad, bar_width, shown)
            ticks["depth" if key != "error" else "error"] = _draw_colorbar(
                figure, box, low, high, bar_cmap, near_bright, label, font_pt
            )
            left += bar_width + 4 + label_room[key]
        left += gap
    return Rendered(figure_to_array(figure), ticks)


def make_panel(
    image: Any,
    depth_gt: Any | None = None,
    depth_pred: Any | None = None,
    *,
    error: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = DEFAULT_CMAP,
    titles: dict[str, str] | None = None,
    max_height: int | None = 480,
) -> np.ndarray:
    """The picture of :func:`render_panel` as ``uint8`` (H, W, 3) (TensorBoard, reports, ``side``)."""
    return render_panel(
        image,
        depth_gt,
        depth_pred,
        error=error,
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
        titles=titles,
        max_height=max_height,
    ).image


def _fit(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if depth.shape == tuple(size):
        return depth
    resized = Image.fromarray(np.ascontiguousarray(depth, dtype=np.float32)).resize(
        (size[1], size[0]), Image.Resampling.NEAREST
    )
    return np.asarray(resized, dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# curves


def plot_curves(
    series: dict[str, list[tuple[float, float]]],
    out: str | Path | io.IOBase,
    xlabel: str = "step",
    width: int = 720,
    row_height: int = 260,
) -> dict[str, list[float]]:
    """Save one line chart per named series of (x, y) points, stacked with a shared x axis, as PNG.

    Each chart has its name as title and y label, a grid, and the x label on the bottom axis (e.g.
    training loss and validation AbsRel against optimizer step). Returns the y tick values of each
    chart, so callers and tests can see the axes are labelled.
    """
    rows = [(name, points) for name, points in series.items() if points]
    if not rows:
        raise ValueError("plot_curves needs at least one non-empty series")
    figure = _figure(width, row_height * len(rows))
    axes_list = figure.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    colours = ("tab:blue", "tab:red", "tab:green", "tab:purple")
    ticks: dict[str, list[float]] = {}
    for index, ((name, points), axes) in enumerate(zip(rows, axes_list, strict=True)):
        xs = [float(p[0]) for p in points]
        ys = [float(p[1]) for p in points]
        axes.plot(
            xs,
            ys,
            color=colours[index % len(colours)],
            linewidth=1.6,
            marker="o" if len(xs) <= 30 else None,
            markersize=3,
        )
        axes.set_title(name, fontsize=11, loc="left")
        axes.set_ylabel(name, fontsize=9)
        axes.grid(True, which="major", alpha=0.35, linewidth=0.6)
        axes.tick_params(labelsize=9)
        axes.margins(x=0.02)
    axes_list[-1].set_xlabel(xlabel, fontsize=10)
    figure.set_layout_engine("constrained")
    figure.savefig(out, format="png", dpi=DPI)
    for (name, _), axes in zip(rows, axes_list, strict=True):
        low, high = sorted(axes.get_ylim())
        ticks[name] = [float(t) for t in axes.get_yticks() if low <= t <= high]
    return ticks
