"""NYU Depth V2 official .mat (HDF5, MATLAB-transposed) + splits.mat, and the sync layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from moa_depthclip.data.io import save_depth_png
from moa_depthclip.data.nyu import NYUDepthV2Mat, NYUSync, load_nyu_splits
from moa_depthclip.errors import DataError

N, H, W = 5, 12, 16  # small stand-in for 1449 x 480 x 640


def _upright(i: int, height: int = H, width: int = W) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric content: a transposed or flipped read cannot reproduce it."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    image = np.stack([rows * 10 + i, cols * 7 + i, (rows * width + cols) % 251], axis=-1).astype(np.uint8)
    depth = (1.0 + rows * (3.0 / height) + cols * (2.0 / width) + 0.5 * i).astype(np.float32)
    return image, depth


def _raw(depth: np.ndarray) -> np.ndarray:
    """Raw Kinect depth: a little off the filled map (sub-millimetre parts to truncate) with holes."""
    raw = (depth + np.float32(0.0007)).astype(np.float32)
    raw[::3, ::4] = 0.0
    return raw


def write_labeled_mat(path: Path, count: int, height: int = H, width: int = W) -> Path:
    """A labeled .mat in the official layout (MATLAB H x W x 3 x N arrays seen reversed by h5py)."""
    images = np.zeros((count, 3, width, height), dtype=np.uint8)
    depths = np.zeros((count, width, height), dtype=np.float32)
    raw = np.zeros((count, width, height), dtype=np.float32)
    for i in range(count):
        image, depth = _upright(i, height, width)
        images[i] = image.transpose(2, 1, 0)
        depths[i] = depth.T
        raw[i] = _raw(depth).T
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=images)
        handle.create_dataset("depths", data=depths)
        handle.create_dataset("rawDepths", data=raw)
    return path


@pytest.fixture
def nyu_mat(tmp_path: Path) -> Path:
    return write_labeled_mat(tmp_path / "nyu_depth_v2_labeled.mat", N)


@pytest.fixture
def splits_v5(tmp_path: Path) -> Path:
    path = tmp_path / "splits.mat"
    scipy.io.savemat(path, {"trainNdxs": np.array([[1], [2], [4]]), "testNdxs": np.array([[3], [5]])})
    return path


def test_splits_v5_one_based(splits_v5: Path) -> None:
    splits = load_nyu_splits(splits_v5)
    assert splits["train"].tolist() == [0, 1, 3] and splits["test"].tolist() == [2, 4]


def test_splits_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "splits73.mat"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("trainNdxs", data=np.array([[1.0, 2.0, 4.0]]))
        handle.create_dataset("testNdxs", data=np.array([[3.0, 5.0]]))
    assert load_nyu_splits(path)["test"].tolist() == [2, 4]


def test_mat_samples_upright_and_in_split(nyu_mat: Path, splits_v5: Path) -> None:
    test = NYUDepthV2Mat(nyu_mat, splits_v5, "test", ground_truth="filled")
    assert len(test) == 2 and test.ground_truth == "filled"
    sample = test[1]  # official frame 5 -> index 4
    image, depth = _upright(4)
    assert sample["name"] == "nyu_0005"
    assert sample["image"].shape == (3, H, W) and sample["depth"].shape == (1, H, W)
    np.testing.assert_array_equal((sample["image"] * 255).round().byte().permute(1, 2, 0).numpy(), image)
    np.testing.assert_allclose(sample["depth"][0].numpy(), depth)
    assert len(NYUDepthV2Mat(nyu_mat, splits_v5, "train")) == 3
    assert len(NYUDepthV2Mat(nyu_mat, split="all")) == N


def test_mat_raw_ground_truth_is_the_extracted_millimetres(tmp_path: Path) -> None:
    """raw (the default): rawDepths x 1000 truncated to uint16 mm, / 1000; holes 0; RGB outside
    rows 7:474, cols 7:632 black."""
    path = write_labeled_mat(tmp_path / "labeled.mat", 1, 480, 640)
    sample = NYUDepthV2Mat(path, split="all")[0]
    image, depth = _upright(0, 480, 640)
    raw = _raw(depth)
    expected = (raw * 1000.0).astype(np.uint16).astype(np.float64) / 1000.0
    np.testing.assert_array_equal(sample["depth"][0].numpy(), expected.astype(np.float32))
    assert (sample["depth"][0].numpy()[::3, ::4] == 0).all()
    # Truncation, not rounding: 0.7 mm above the filled depth stays below the next millimetre.
    assert not np.allclose(sample["depth"][0].numpy()[1:, 1:], np.round(raw[1:, 1:] * 1000) / 1000, atol=1e-7)
    rgb = (sample["image"] * 255).round().byte().permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(rgb[7:474, 7:632], image[7:474, 7:632])
    assert rgb[:7].max() == 0 and rgb[474:].max() == 0 and rgb[:, :7].max() == 0 and rgb[:, 632:].max() == 0


def test_mat_without_raw_depths_says_use_filled(tmp_path: Path) -> None:
    path = tmp_path / "filled_only.mat"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=np.zeros((1, 3, W, H), dtype=np.uint8))
        handle.create_dataset("depths", data=np.ones((1, W, H), dtype=np.float32))
    with pytest.raises(DataError, match="rawDepths.*filled"):
        NYUDepthV2Mat(path, split="all")
    assert NYUDepthV2Mat(path, split="all", ground_truth="filled")[0]["depth"].max() == 1.0
    with pytest.raises(DataError, match="ground truth"):
        NYUDepthV2Mat(path, split="all", ground_truth="dense")


def test_mat_works_with_dataloader_workers(nyu_mat: Path, splits_v5: Path) -> None:
    dataset = NYUDepthV2Mat(nyu_mat, splits_v5, "train")
    dataset[0]  # the parent opens a handle; workers must open their own
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, num_workers=2)
    names = [batch["name"][0] for batch in loader]
    assert names == ["nyu_0001", "nyu_0002", "nyu_0004"]


def test_mat_errors(tmp_path: Path, nyu_mat: Path, splits_v5: Path) -> None:
    with pytest.raises(DataError, match="missing.mat"):
        NYUDepthV2Mat(tmp_path / "missing.mat", splits_v5)
    (tmp_path / "old.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 200)
    with pytest.raises(DataError, match="HDF5.*old.mat"):
        NYUDepthV2Mat(tmp_path / "old.mat", splits_v5)
    with pytest.raises(DataError, match="splits"):
        NYUDepthV2Mat(nyu_mat, None, "test")
    bad = tmp_path / "bad_splits.mat"
    scipy.io.savemat(bad, {"trainNdxs": np.array([[1]]), "testNdxs": np.array([[99]])})
    with pytest.raises(DataError, match="frame 99"):
        NYUDepthV2Mat(nyu_mat, bad, "test")


def _write_sync(root: Path, count: int = 3) -> Path:
    lines = []
    (root / "kitchen_0001").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, depth = _upright(i)
        Image.fromarray(image).save(root / "kitchen_0001" / f"rgb_{i:05d}.jpg", quality=100)
        save_depth_png(root / "kitchen_0001" / f"sync_depth_{i:05d}.png", depth, 1000.0)
        lines.append(f"kitchen_0001/rgb_{i:05d}.jpg kitchen_0001/sync_depth_{i:05d}.png 518.8579")
    filenames = root / "files.txt"
    filenames.write_text("\n".join(lines) + "\n# comment\n\n")
    return filenames


def test_sync_layout(tmp_path: Path) -> None:
    filenames = _write_sync(tmp_path)
    dataset = NYUSync(tmp_path, filenames)
    assert len(dataset) == 3
    sample = dataset[2]
    assert sample["name"] == "kitchen_0001/rgb_00002"
    assert sample["focal"] == pytest.approx(518.8579)
    np.testing.assert_allclose(sample["depth"][0].numpy(), _upright(2)[1], atol=6e-4)


def test_sync_bad_lines_and_files(tmp_path: Path) -> None:
    filenames = _write_sync(tmp_path)
    (tmp_path / "kitchen_0001" / "sync_depth_00001.png").unlink()
    with pytest.raises(DataError, match="sync_depth_00001.png"):
        NYUSync(tmp_path, filenames)[1]
    broken = tmp_path / "broken.txt"
    broken.write_text("only_one_field.jpg\n")
    with pytest.raises(DataError, match="broken.txt:1"):
        NYUSync(tmp_path, broken)
