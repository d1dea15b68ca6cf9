"""A plain folder of image/depth pairs, for users' own data.

Two layouts are recognised, matched by file stem:

* ``root/image/NAME.{jpg,jpeg,png,bmp,tif,tiff,webp}`` with ``root/depth/NAME.{png,npy}``;
* a flat ``root/NAME.jpg`` (any image extension) with ``root/NAME_depth.{png,npy}``.

16-bit PNG depth is divided by ``depth_scale`` (1000 for millimetres); ``.npy`` depth is metres.
Images without a depth file are listed in ``skipped``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from moa_depthclip.data.pairs import PairDataset, PairEntry
from moa_depthclip.errors import DataError

PathLike = str | os.PathLike

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEPTH_SUFFIXES = (".png", ".npy")


def _find_depth(folder: Path, stem: str) -> Path | None:
    for suffix in DEPTH_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def find_folder_pairs(root: PathLike) -> tuple[list[PairEntry], list[str]]:
    """List (image, depth) pairs under ``root``; return (entries, images without depth)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    split_layout = (root / "image").is_dir() and (root / "depth").is_dir()
    image_dir = root / "image" if split_layout else root
    entries: list[PairEntry] = []
    skipped: list[str] = []
    for image_path in sorted(image_dir.iterdir()):
        if image_path.suffix.lower() not in IMAGE_SUFFIXES or not image_path.is_file():
            continue
        stem = image_path.stem
        if not split_layout and stem.endswith("_depth"):
            continue
        depth_path = _find_depth(root / "depth", stem) if split_layout else _find_depth(root, f"{stem}_depth")
        if depth_path is None:
            skipped.append(image_path.name)
            continue
        entries.append(PairEntry(image_path, depth_path, stem))
    if not entries:
        raise DataError(
            f"no image/depth pairs in {root} (expected image/NAME.jpg + depth/NAME.png, "
            "or NAME.jpg + NAME_depth.png)"
        )
    return entries, skipped


class FolderPairs(PairDataset):
    """Image/depth pairs found in a folder (see the module docstring for the layouts)."""

    def __init__(
        self, root: PathLike, depth_scale: float = 1000.0, transform: Callable[[dict], dict] | None = None
    ) -> None:
        entries, skipped = find_folder_pairs(root)
        super().__init__(entries, depth_scale, transform=transform, skipped=skipped)
