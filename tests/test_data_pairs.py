"""KITTI Eigen layout (16-bit PNG / 256, None lines), plain folders, and aligned augmentations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from moa_depthclip.data.folder import FolderPairs
from moa_depthclip.data.io import save_depth_png
from moa_depthclip.data.kitti import KITTIEigen
from moa_depthclip.data.transforms import TrainAugment, model_input_size, resize_depth
from moa_depthclip.errors import DataError


def _write_kitti(tmp_path: Path) -> tuple[Path, Path, Path]:
    raw, gt = tmp_path / "raw", tmp_path / "gt"
    lines = []
    for i in range(3):
        image_rel = f"2011_09_26/2011_09_26_drive_0002_sync/image_02/data/{i:010d}.png"
        depth_rel = f"2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/{i:010d}.png"
        (raw / image_rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((10, 30, 3), 40 * i, dtype=np.uint8)).save(raw / image_rel)
        depth = np.zeros((10, 30), dtype=np.float32)
        depth[5:, ::3] = 5.0 + i  # sparse LiDAR-like
        if i < 2:
            save_depth_png(gt / depth_rel, depth, 256.0)
            lines.append(f"{image_rel} {depth_rel} 721.5377")
        else:
            lines.append(f"{image_rel} None 721.5377")
    filenames = tmp_path / "eigen_test_files.txt"
    filenames.write_text("\n".join(lines) + "\n")
    return raw, gt, filenames


def test_kitti_scale_and_none_lines(tmp_path: Path) -> None:
    raw, gt, filenames = _write_kitti(tmp_path)
    dataset = KITTIEigen(raw, filenames, gt)
    assert len(dataset) == 2 and len(dataset.skipped) == 1
    sample = dataset[1]
    depth = sample["depth"][0]
    assert float(depth[5, 0]) == pytest.approx(6.0) and float(depth[0, 0]) == 0.0
    assert sample["focal"] == pytest.approx(721.5377)


def test_kitti_image_depth_size_mismatch(tmp_path: Path) -> None:
    raw, gt, filenames = _write_kitti(tmp_path)
    first = next(gt.rglob("0000000000.png"))
    save_depth_png(first, np.ones((9, 30), dtype=np.float32), 256.0)
    with pytest.raises(DataError, match="does not match"):
        KITTIEigen(raw, filenames, gt)[0]


def test_folder_both_layouts(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8)).save(flat / "a.jpg")
    save_depth_png(flat / "a_depth.png", np.full((4, 5), 2.0), 1000.0)
    Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8)).save(flat / "lonely.png")
    dataset = FolderPairs(flat, depth_scale=1000.0)
    assert len(dataset) == 1 and dataset.skipped == ["lonely.png"]
    assert float(dataset[0]["depth"].max()) == pytest.approx(2.0)

    split = tmp_path / "split"
    (split / "image").mkdir(parents=True)
    (split / "depth").mkdir()
    Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8)).save(split / "image" / "x.png")
    np.save(split / "depth" / "x.npy", np.full((4, 5), 3.5, dtype=np.float32))
    assert float(FolderPairs(split)[0]["depth"].max()) == pytest.approx(3.5)
    with pytest.raises(DataError, match="no image/depth pairs"):
        FolderPairs(split / "depth")


def test_augment_keeps_image_and_depth_aligned() -> None:
    # Depth equals the red channel: any misalignment breaks the equality.
    height, width = 40, 60
    red = torch.rand(height, width) * 0.8 + 0.1
    image = torch.stack([red, torch.zeros_like(red), torch.zeros_like(red)])
    sample = {"image": image, "depth": red[None].clone(), "name": "x"}
    augment = TrainAugment(crop_size=(32, 48), max_rotation_deg=0.0, jitter_prob=0.0, flip_prob=0.5)
    for seed in range(6):
        out = augment(sample, torch.Generator().manual_seed(seed))
        assert out["image"].shape == (3, 32, 48) and out["depth"].shape == (1, 32, 48)
        torch.testing.assert_close(out["image"][0], out["depth"][0])


def test_rotation_never_blends_invalid_depth() -> None:
    depth = torch.full((1, 30, 30), 4.0)
    depth[:, :, :15] = 0.0
    sample = {"image": torch.rand(3, 30, 30), "depth": depth, "name": "x"}
    augment = TrainAugment(rotation_prob=1.0, max_rotation_deg=5.0, jitter_prob=1.0)
    out = augment(sample, torch.Generator().manual_seed(3))
    assert set(out["depth"].unique().tolist()) <= {0.0, 4.0}
    assert float(out["image"].min()) >= 0.0 and float(out["image"].max()) <= 1.0


def test_resize_helpers() -> None:
    assert model_input_size(240, 320) == (256, 320)
    assert model_input_size(375, 1242) == (384, 1248)
    depth = torch.tensor([[[0.0, 2.0], [3.0, 4.0]]])
    assert set(resize_depth(depth, (5, 7)).unique().tolist()) <= {0.0, 2.0, 3.0, 4.0}
