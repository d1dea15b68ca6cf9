"""Metric depth for every photo in a folder.

    python examples/depth_for_folder.py photos/ depth/ --model runs/nyu/best
    python examples/depth_for_folder.py photos/ depth/ --model depthclip-vit   # zero-shot DepthCLIP

Per photo it writes NAME_depth.png (16-bit, millimetres), NAME_depth.npy (float32, metres) and
NAME_depth_color.png (coloured, with a colour bar in metres). Unreadable files are reported and
skipped. `moa-depthclip predict` does the same with more options (globs, sub-folders, point clouds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from moa_depthclip.inference.loading import load_depth_model
from moa_depthclip.inference.outputs import write_outputs
from moa_depthclip.inference.predict import iter_predictions

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("photos", type=Path, help="folder of photos")
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--model", default="random", help="saved model folder, run folder or spec")
    args = parser.parse_args(argv)

    model = load_depth_model(args.model)
    if model.is_random_init:
        print("warning: this model has RANDOM weights: its depth is meaningless")
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    failed = 0
    for result in iter_predictions(model, photos):
        if not result.ok:
            print(f"skipped {result.source}: {result.error}")
            failed += 1
            continue
        stem = args.out / Path(result.source).stem
        write_outputs(stem, result.image, result.depth, ("png16", "npy", "color"))
        print(f"{result.source}: depth {result.depth.min():.2f}-{result.depth.max():.2f} m -> {stem}_depth.*")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
