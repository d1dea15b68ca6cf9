"""`make-synthetic`: export the embedded synthetic scenes in the NYU "sync" layout, plus a preview.

The export lets every tool that reads NYU sync data (ours or others') read the synthetic scenes too.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from moa_depthclip.data.synthetic import MAX_SCENE_DEPTH, SPLIT_CODES, SyntheticScenes, export_sync_layout
from moa_depthclip.errors import UserFacingError
from moa_depthclip.paths import writable_dir

# A perceptually ordered ramp (near = warm/bright, far = dark blue), interpolated piecewise-linearly.
_RAMP = np.array(
    [
        [0.99, 0.91, 0.15],
        [0.98, 0.55, 0.04],
        [0.85, 0.22, 0.23],
        [0.55, 0.07, 0.45],
        [0.22, 0.05, 0.45],
        [0.02, 0.02, 0.15],
    ]
)


def colorize_depth(depth: np.ndarray, max_depth: float = MAX_SCENE_DEPTH) -> np.ndarray:
    """Depth (H, W) metres -> uint8 RGB preview; invalid (0) pixels are black."""
    x = np.clip(depth / max_depth, 0.0, 1.0) * (len(_RAMP) - 1)
    low = np.floor(x).astype(int).clip(0, len(_RAMP) - 2)
    frac = (x - low)[..., None]
    rgb = _RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac
    rgb[depth <= 0] = 0
    return (rgb * 255 + 0.5).astype(np.uint8)


def preview_grid(
    dataset: SyntheticScenes, count: int, columns: int = 4, max_depth: float | None = None
) -> np.ndarray:
    """Tiles of (image | colourised depth) for the first ``count`` scenes, ``columns`` pairs per row."""
    count = min(count, len(dataset))
    tiles = []
    for index in range(count):
        rendered = dataset.render(index)
        scale = max_depth or max(float(rendered.depth.max()), 1e-3)
        tiles.append(np.concatenate([rendered.image, colorize_depth(rendered.depth, scale)], axis=1))
    height, width = tiles[0].shape[:2]
    rows = (count + columns - 1) // columns
    gap = 4
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        grid[
            r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width
        ] = tile
    return grid


def _run(args: argparse.Namespace) -> int:
    if args.num < 1:
        raise UserFacingError("--num must be at least 1")
    if args.height < 32 or args.width < 32:
        raise UserFacingError("--height and --width must be at least 32")
    if args.preview < 0:
        raise UserFacingError("--preview must be 0 or more")
    if not 1 <= args.jpeg_quality <= 100:
        raise UserFacingError("--jpeg-quality must be between 1 and 100")
    out = writable_dir(args.out, "--out")
    filenames = export_sync_layout(
        out, args.num, args.height, args.width, args.seed, args.split, args.jpeg_quality
    )
    preview = out / f"{args.split}_preview.png"
    if args.preview > 0:
        dataset = SyntheticScenes(args.num, args.height, args.width, args.seed, args.split)
        Image.fromarray(preview_grid(dataset, args.preview, columns=4)).save(preview)
    shown = f", preview {preview}" if args.preview > 0 else ""
    print(f"wrote {args.num} scenes to {out} (filenames file {filenames}{shown})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make-synthetic",
        help="export the embedded synthetic RGB-D scenes in the NYU sync layout",
        description="Render synthetic indoor scenes and write SPLIT/rgb_XXXXX.jpg, SPLIT/sync_depth_XXXXX.png "
        "(uint16, mm), SPLIT_files.txt and SPLIT_preview.png under --out.",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--num", type=int, default=100, help="number of scenes (default 100)")
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=sorted(SPLIT_CODES), default="train")
    parser.add_argument("--jpeg-quality", type=int, default=95)
    parser.add_argument("--preview", type=int, default=12, help="scenes in the preview grid (default 12)")
    parser.set_defaults(func=_run)
