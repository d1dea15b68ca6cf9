"""What the web app does, as plain functions: choose models, run them on uploads, make downloads.

Nothing here imports Gradio. :func:`estimate` takes file paths (what the upload widget gives) and
returns an :class:`AppResult`: per image a panel (image | coloured depth with a colour bar in metres,
and the second model's depth when comparing), a before/after pair for the comparison slider, the
download files (16-bit PNG in millimetres, .npy in metres, .ply point cloud, written by
:mod:`moa_depthclip.inference.outputs`), and a Markdown message. A bad upload (not an image, a
truncated file, an image over :data:`MAX_PIXELS`) becomes a line in that message, never an exception.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from moa_depthclip.config import DEFAULT_CLIP
from moa_depthclip.errors import UserFacingError
from moa_depthclip.visualize import DEFAULT_CMAP, colorize, depth_range, render_panel

#: Largest upload the app decodes (pixels); bigger photos: ``moa-depthclip predict``.
MAX_PIXELS = 40_000_000
MAX_IMAGES = 16
DOWNLOAD_FORMATS = ("png16", "npy", "ply")
RANDOM_SPEC = "random"


@dataclass
class ModelEntry:
    """A model the page offers: its spec (as ``load_depth_model`` takes it) and what the page says."""

    spec: str
    label: str


@dataclass
class AppResult:
    panels: list[tuple[np.ndarray, str]] = field(default_factory=list)
    slider: tuple[np.ndarray, np.ndarray] | None = None
    files: list[str] = field(default_factory=list)
    message: str = ""


def model_entries(specs: Sequence[str]) -> list[ModelEntry]:
    """The page's model list: the given specs (saved folders, ``depthclip-vit:SOURCE``, ...) and,
    always last, the random-weights MoA-DepthCLIP, each with a label that says what it is."""
    entries = [ModelEntry(spec, describe_spec(spec)) for spec in dict.fromkeys(specs) if spec != RANDOM_SPEC]
    entries.append(ModelEntry(RANDOM_SPEC, describe_spec(RANDOM_SPEC)))
    return entries


def describe_spec(spec: str) -> str:
    """A label for a model spec, before loading it (loading may take a while)."""
    if spec == RANDOM_SPEC:
        return "MoA-DepthCLIP with RANDOM weights (untrained: its depth is meaningless; for trying the app)"
    if spec.startswith("depthclip-vit") or spec.startswith("depthclip-rn50"):
        source = spec.partition(":")[2] or DEFAULT_CLIP
        backbone = "ResNet-50" if spec.startswith("depthclip-rn50") else "ViT"
        random = " with RANDOM weights" if source == "random" else ""
        return f"DepthCLIP zero-shot (CLIP {backbone}{random}, from {source})"
    if spec.startswith("constant:"):
        return f"constant depth {spec.partition(':')[2]} m (a floor, not a model)"
    return f"MoA-DepthCLIP saved model: {spec}"


class ModelCache:
    """Loads each spec once (thread-safe: Gradio runs handlers in worker threads)."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, spec: str) -> Any:
        with self._lock:
            if spec not in self._models:
                from moa_depthclip.inference.loading import load_depth_model

                self._models[spec] = load_depth_model(spec, device=self.device)
            return self._models[spec]


def read_upload(path: str | Path) -> np.ndarray:
    """An uploaded file as upright RGB ``uint8``; one-line :class:`UserFacingError` otherwise."""
    from moa_depthclip.data.io import load_rgb

    name = Path(path).name
    try:
        with Image.open(path) as header:  # reads the header only: the size before decoding
            width, height = header.size
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UserFacingError(
            f"{name}: not an image file Pillow can read ({type(error).__name__})"
        ) from error
    if width * height > MAX_PIXELS:
        raise UserFacingError(
            f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels, more than the app's "
            f"{MAX_PIXELS / 1e6:.0f}; shrink it or use `moa-depthclip predict`"
        )
    try:
        return load_rgb(path)
    except UserFacingError as error:
        raise UserFacingError(f"{name}: {error}") from error
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UserFacingError(f"{name}: the image could not be decoded ({error})") from error


def estimate(
    paths: Sequence[str | Path] | None,
    cache: ModelCache,
    model_spec: str,
    compare_spec: str | None = None,
    cmap: str = DEFAULT_CMAP,
    out_root: str | Path | None = None,
    labels: dict[str, str] | None = None,
) -> AppResult:
    """Run the chosen model (and the comparison model) on the uploads; never raises for bad uploads."""
    from moa_depthclip.inference.outputs import write_outputs
    from moa_depthclip.visualize import check_colormap

    result = AppResult()
    labels = labels or {}
    paths = [p for p in (paths or []) if p]
    if not paths:
        result.message = "Upload one or more images (JPEG, PNG, ...) first."
        return result
    lines: list[str] = []
    if len(paths) > MAX_IMAGES:
        lines.append(f"Only the first {MAX_IMAGES} of {len(paths)} images are processed.")
        paths = paths[:MAX_IMAGES]
    try:
        check_colormap(cmap)
        model = cache.get(model_spec)
        other = cache.get(compare_spec) if compare_spec and compare_spec != model_spec else None
    except UserFacingError as error:
        result.message = f"**Could not load the model:** {error}"
        return result
    names = [labels.get(model_spec, describe_spec(model_spec))]
    if other is not None:
        names.append(labels.get(compare_spec or "", describe_spec(compare_spec or "")))
    for label, loaded in zip(names, (model, other), strict=False):
        if getattr(loaded, "is_random_init", False):
            lines.append(
                f"**Warning:** {label}: its CLIP backbone started from RANDOM weights (no pretrained "
                "CLIP). Untrained, its depth is meaningless; trained, it is far weaker than a model "
                "started from pretrained CLIP."
            )

    out_dir = Path(tempfile.mkdtemp(prefix="moa-depthclip-app-", dir=out_root))
    done = 0
    for index, path in enumerate(paths):
        name = Path(path).name
        try:
            image = read_upload(path)
            depths = [_predict(model, image)]
            if other is not None:
                depths.append(_predict(other, image))
        except UserFacingError as error:
            lines.append(f"- skipped {error}")
            continue
        vmin, vmax = depth_range(*depths)
        for label, depth in zip(names, depths, strict=True):
            panel = render_panel(
                image, depth_pred=depth, vmin=vmin, vmax=vmax, cmap=cmap, titles={"pred": "depth"}
            )
            result.panels.append((panel.image, f"{name}: {label}"))
        stem = out_dir / f"{index:02d}_{Path(name).stem}"
        written = write_outputs(stem, image, depths[0], DOWNLOAD_FORMATS, cmap=cmap)
        result.files.extend(str(written[kind]) for kind in DOWNLOAD_FORMATS)
        if result.slider is None:
            result.slider = (image, colorize(depths[0], vmin, vmax, cmap))
        low, high = float(np.nanmin(depths[0])), float(np.nanmax(depths[0]))
        lines.append(f"- {name}: {image.shape[1]}x{image.shape[0]}, depth {low:.2f}-{high:.2f} m")
        done += 1
    header = f"Processed {done} of {len(paths)} image(s) with {names[0]}"
    header += f", compared with {names[1]}." if len(names) > 1 else "."
    warnings = [line for line in lines if not line.startswith("- ")]
    items = [line for line in lines if line.startswith("- ")]
    result.message = "\n\n".join([header, *warnings, "\n".join(items)]).strip()
    return result


def stack_panels(panels: Sequence[tuple[np.ndarray, str]], gap: int = 12, top: int = 0) -> np.ndarray | None:
    """All panels in one picture, top to bottom, on white (one image element shows every result);
    ``top`` white rows first (room for the page's label over the picture)."""
    if not panels:
        return None
    width = max(panel.shape[1] for panel, _ in panels)
    rows = [np.full((top, width, 3), 255, np.uint8)]
    for panel, _ in panels:
        padded = np.full((panel.shape[0] + gap, width, 3), 255, np.uint8)
        padded[: panel.shape[0], : panel.shape[1]] = panel
        rows.append(padded)
    return np.concatenate(rows, axis=0)[:-gap]


def _predict(model: Any, image: np.ndarray) -> np.ndarray:
    from moa_depthclip.inference.predict import predict_depth

    return predict_depth(model, image)
