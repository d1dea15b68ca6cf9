"""KITTI Eigen split: RGB frames with projected LiDAR ground truth (uint16 PNG, metres * 256).

The common filenames files (``image_path depth_path focal``) name images relative to the raw-data
root and ground truth relative to a separate ground-truth root; lines whose depth is ``None`` have no
ground truth and are skipped (their number is kept in ``skipped`` and printed by the evaluation).
Depth is returned as stored; the 80 m cap and the Garg crop belong to the evaluation protocol.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from moa_depthclip.data.pairs import PairDataset, read_filenames_file

PathLike = str | os.PathLike

KITTI_DEPTH_SCALE = 256.0
KITTI_MAX_DEPTH = 80.0


class KITTIEigen(PairDataset):
    """KITTI Eigen-split samples; ``gt_root`` defaults to ``data_root``."""

    def __init__(
        self,
        data_root: PathLike,
        filenames_file: PathLike,
        gt_root: PathLike | None = None,
        depth_scale: float = KITTI_DEPTH_SCALE,
        transform: Callable[[dict], dict] | None = None,
    ) -> None:
        entries, skipped = read_filenames_file(filenames_file, data_root, gt_root)
        super().__init__(entries, depth_scale, transform=transform, skipped=skipped)
