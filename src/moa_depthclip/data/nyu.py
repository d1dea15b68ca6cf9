"""NYU Depth V2: the official labeled ``.mat`` file with ``splits.mat``, and the "sync" layout.

The labeled file is MATLAB v7.3 (HDF5). MATLAB writes arrays column-major, so h5py sees every
dimension reversed: ``images`` is (1449, 3, 640, 480) = (N, C, W, H) and ``depths`` /
``rawDepths`` are (1449, 640, 480) = (N, W, H). Swapping the last two axes gives upright 480x640
images; depth is in metres. The file is 2.8 GB, so samples are read one at a time and the HDF5
handle is opened lazily in whichever process reads (each DataLoader worker gets its own handle).

Two ground truths can be read from it (``ground_truth``):

* ``"raw"`` (default): what the field evaluates on. The "sync" official test split of BTS, AdaBins
  and DepthCLIP was extracted from this file's ``rawDepths`` (holes = 0), multiplied by 1000 and
  truncated to uint16 millimetres, with RGB files that keep only rows 7:474, cols 7:632 of each
  image (the rest black). ``raw`` reproduces those values exactly, so an evaluation on the ``.mat``
  gives the same numbers as one on the extracted files (with lossless RGB).
* ``"filled"``: the colourised, hole-filled ``depths`` and the full RGB image.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
from torch.utils.data import Dataset

from moa_depthclip.data.cameras import NYU_FX, NYU_WIDTH
from moa_depthclip.data.io import sanitize_depth, stored_to_metres
from moa_depthclip.data.pairs import PairDataset, read_filenames_file
from moa_depthclip.data.transforms import depth_to_tensor, image_to_tensor, scale_box
from moa_depthclip.errors import DataError

PathLike = str | os.PathLike

GROUND_TRUTHS = ("raw", "filled")
# Rows 7:474 and cols 7:632 (480x640) are the RGB kept by the sync extraction; the rest is black.
NYU_SYNC_RGB_BOX = (7, 474, 7, 632)
NYU_DEPTH_SCALE = 1000.0  # sync depth PNGs store millimetres

_SPLIT_KEYS = {"train": "trainNdxs", "test": "testNdxs"}


def _indices_from_array(values: np.ndarray, key: str, path: Path) -> np.ndarray:
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0 or not np.all(np.isfinite(flat)) or not np.all(flat == np.round(flat)):
        raise DataError(f"splits file has a non-integer or empty '{key}': {path}")
    return flat.astype(np.int64)


def load_nyu_splits(path: PathLike) -> dict[str, np.ndarray]:
    """Read ``splits.mat`` -> {"train": 0-based indices, "test": 0-based indices}.

    The official file is an old-format (v5) MATLAB file, read with scipy; a v7.3 (HDF5) re-save is
    read with h5py. The stored indices are 1-based and are converted here.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"splits file not found: {path}")
    raw: dict[str, np.ndarray] = {}
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as handle:
            for key in _SPLIT_KEYS.values():
                if key in handle:
                    raw[key] = handle[key][()]
    else:
        try:
            from scipy.io import loadmat
        except ImportError as error:
            raise DataError(
                f"reading the v5 MATLAB splits file {path} needs scipy (pip install scipy)"
            ) from error
        try:
            content = loadmat(str(path))
        except Exception as error:  # scipy raises many types for a bad file
            raise DataError(f"splits file is not a readable MATLAB file: {path} ({error})") from error
        raw = {key: content[key] for key in _SPLIT_KEYS.values() if key in content}
    splits: dict[str, np.ndarray] = {}
    for split, key in _SPLIT_KEYS.items():
        if key not in raw:
            raise DataError(f"splits file has no '{key}' variable: {path}")
        one_based = _indices_from_array(raw[key], key, path)
        if one_based.min() < 1:
            raise DataError(f"splits file '{key}' holds an index < 1 (indices are 1-based): {path}")
        splits[split] = one_based - 1
    if np.intersect1d(splits["train"], splits["test"]).size:
        raise DataError(f"splits file has indices in both trainNdxs and testNdxs: {path}")
    return splits


def raw_depth_as_extracted(raw: np.ndarray) -> np.ndarray:
    """``rawDepths`` metres -> the metres a sync depth PNG of the same frame holds.

    The extraction multiplies by 1000 in the array's own precision, truncates to uint16
    millimetres, and readers divide by 1000; holes stay 0.
    """
    raw = np.where(np.isfinite(raw) & (raw > 0), raw, 0).astype(np.asarray(raw).dtype)
    millimetres = np.clip(raw * 1000.0, 0, 65535).astype(np.uint16)
    return stored_to_metres(millimetres, NYU_DEPTH_SCALE)


def black_outside_sync_box(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> the image with everything outside rows 7:474, cols 7:632 black (the box
    is scaled proportionally for frames that are not 480x640)."""
    top, bottom, left, right = scale_box(NYU_SYNC_RGB_BOX, *image.shape[:2])
    out = np.zeros_like(image)
    out[top:bottom, left:right] = image[top:bottom, left:right]
    return out


class NYUDepthV2Mat(Dataset):
    """Samples from ``nyu_depth_v2_labeled.mat``: upright RGB 480x640 and depth in metres.

    ``split`` is "train" (795) or "test" (654) with ``splits_path``, or "all" (every frame).
    ``ground_truth`` is ``"raw"`` (the field's evaluation ground truth, as the sync files hold it)
    or ``"filled"`` (see the module docstring). Names are ``nyu_0001``... with the official 1-based
    frame number.
    """

    def __init__(
        self,
        mat_path: PathLike,
        splits_path: PathLike | None = None,
        split: str = "test",
        transform: Callable[[dict], dict] | None = None,
        ground_truth: str = "raw",
    ) -> None:
        if ground_truth not in GROUND_TRUTHS:
            raise DataError(f"NYU ground truth must be one of {GROUND_TRUTHS}, got {ground_truth!r}")
        self.mat_path = Path(mat_path)
        self.ground_truth = ground_truth
        self.transform = transform
        self.skipped: list[str] = []
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        self.num_frames = self._check_file()
        if split == "all":
            self.indices = np.arange(self.num_frames)
        elif split in _SPLIT_KEYS:
            if splits_path is None:
                raise DataError(f"split '{split}' of {self.mat_path} needs the splits.mat file")
            self.indices = load_nyu_splits(splits_path)[split]
            if self.indices.max() >= self.num_frames:
                raise DataError(
                    f"splits file {splits_path} refers to frame {self.indices.max() + 1} but "
                    f"{self.mat_path} has only {self.num_frames} frames"
                )
        else:
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")

    def _check_file(self) -> int:
        path = self.mat_path
        if not path.is_file():
            raise DataError(f"NYU labeled file not found: {path}")
        if not h5py.is_hdf5(path):
            raise DataError(f"NYU labeled file is not a MATLAB v7.3 (HDF5) file: {path}")
        try:
            with h5py.File(path, "r") as handle:
                if "images" not in handle or self._depth_key not in handle:
                    hint = " (use ground truth 'filled' for a file without raw depths)" if (
                        self.ground_truth == "raw"
                    ) else ""
                    raise DataError(
                        f"NYU labeled file has no 'images' and '{self._depth_key}' datasets: {path}{hint}"
                    )
                images, depths = handle["images"].shape, handle[self._depth_key].shape
        except OSError as error:
            raise DataError(f"NYU labeled file cannot be opened (corrupt?): {path} ({error})") from error
        if len(images) != 4 or images[1] != 3 or len(depths) != 3 or images[0] != depths[0]:
            raise DataError(
                f"NYU labeled file has unexpected shapes images {images}, depths {depths} "
                f"(expected (N, 3, W, H) and (N, W, H)): {path}"
            )
        if images[2:] != depths[1:]:
            raise DataError(f"NYU labeled file: image size {images[2:]} != depth size {depths[1:]}: {path}")
        return int(images[0])

    @property
    def _depth_key(self) -> str:
        return "rawDepths" if self.ground_truth == "raw" else "depths"

    def _file(self) -> h5py.File:
        # Reopen after a fork: an HDF5 handle must not be shared between processes.
        if self._handle is None or self._pid != os.getpid():
            self._handle = h5py.File(self.mat_path, "r")
            self._pid = os.getpid()
        return self._handle

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handle"], state["_pid"] = None, None
        return state

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        frame = int(self.indices[index])
        handle = self._file()
        try:
            image = np.asarray(handle["images"][frame])  # (3, W, H)
            depth = np.asarray(handle[self._depth_key][frame])  # (W, H)
        except OSError as error:
            raise DataError(f"NYU labeled file: frame {frame + 1} cannot be read: {self.mat_path}") from error
        image = np.ascontiguousarray(image.transpose(2, 1, 0))  # (H, W, 3)
        if image.dtype != np.uint8:
            image = np.clip(image, 0, 255).astype(np.uint8)
        depth = depth.T
        if self.ground_truth == "raw":
            image = black_outside_sync_box(image)
            depth = raw_depth_as_extracted(depth)
        depth, masked = sanitize_depth(depth, f"{self.mat_path} frame {frame + 1}", allow_empty=True)
        sample = {
            "image": image_to_tensor(image),
            "depth": depth_to_tensor(depth),
            "name": f"nyu_{frame + 1:04d}",
            "focal": NYU_FX * image.shape[1] / NYU_WIDTH,
            "masked_pixels": masked,
        }
        if self.transform is not None:
            sample = self.transform(sample)
        return sample


class NYUSync(PairDataset):
    """The "sync" layout: ``scene/rgb_XXXXX.jpg`` + ``scene/sync_depth_XXXXX.png`` (uint16 mm).

    The official test split in this layout holds the raw Kinect depth (see the module docstring);
    ``ground_truth`` only labels what the files hold, for the results tables.
    """

    def __init__(
        self,
        data_root: PathLike,
        filenames_file: PathLike,
        depth_root: PathLike | None = None,
        depth_scale: float = NYU_DEPTH_SCALE,
        transform: Callable[[dict], dict] | None = None,
        ground_truth: str = "raw",
    ) -> None:
        entries, skipped = read_filenames_file(filenames_file, data_root, depth_root)
        super().__init__(entries, depth_scale, transform=transform, skipped=skipped)
        self.ground_truth = ground_truth
