"""The one registry of datasets: names, what each needs, how it is built, its evaluation protocol.

Training (``training.data.build_datasets``) and evaluation (``moa-depthclip evaluate``) both build
datasets here, so a name means the same thing everywhere and every dataset can be trained on and
evaluated. Names use hyphens (``nyu-mat``); the underscore spellings of older configs
(``nyu_mat``) are accepted and mean the same dataset.

=============  ==============================================  ======================
name           files                                           evaluation protocol
=============  ==============================================  ======================
synthetic      none (rendered rooms, seeded)                   synthetic
nyu-mat        nyu_depth_v2_labeled.mat + splits.mat           nyu
nyu-sync       BTS "sync" folder + filenames files              nyu
kitti          KITTI raw + annotated depth + filenames files   kitti
folder         image/ + depth/ folders (or NAME_depth files)   nyu
=============  ==============================================  ======================

Every option has one name (the fields of :class:`DatasetOptions`); ``OPTION_SPELLINGS`` says how
the training config and the command line spell it, and the errors name both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.data import Dataset

from moa_depthclip.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class DatasetOptions:
    """Where a dataset's files are, per split; each dataset reads the fields it needs.

    ``test_*`` describes the evaluated split; training validates on it too ("val"), except for
    the synthetic scenes, whose "val" and "test" scenes are different seeds.
    """

    # NYU labeled .mat
    mat_path: str | None = None
    splits_path: str | None = None
    ground_truth: str = "raw"  # NYU .mat: "raw" (the field's evaluation ground truth) or "filled"
    # file-list layouts (nyu-sync, kitti) and folders
    train_root: str | None = None
    train_gt_root: str | None = None
    train_filenames: str | None = None
    test_root: str | None = None
    test_gt_root: str | None = None
    test_filenames: str | None = None
    depth_scale: float | None = None  # PNG value per metre; None = the dataset's (1000, KITTI 256)
    # synthetic scenes
    train_num: int = 256
    test_num: int = 32  # scenes of the "val" or "test" split
    size: tuple[int, int] = (240, 320)
    seed: int = 0


# How the training config (data.*) and `moa-depthclip evaluate` spell each option.
OPTION_SPELLINGS: dict[str, tuple[str, str]] = {
    "mat_path": ("data.mat_path", "--mat"),
    "splits_path": ("data.splits_path", "--splits"),
    "train_root": ("data.data_root", "--train-root (default --data-root)"),
    "train_gt_root": ("data.gt_root", "--train-gt-root"),
    "train_filenames": ("data.train_filenames", "--train-filenames"),
    "test_root": ("data.val_root (default data.data_root)", "--data-root"),
    "test_gt_root": ("data.val_gt_root", "--gt-root"),
    "test_filenames": ("data.val_filenames", "--filenames"),
}


def _need(name: str, options: DatasetOptions, *fields: str) -> None:
    missing = [field for field in fields if getattr(options, field) in (None, "")]
    if missing:
        spelled = ", ".join(
            f"{field} ({' / '.join(OPTION_SPELLINGS.get(field, (field,)))})" for field in missing
        )
        raise DataError(f"dataset {name} needs {spelled}")


def _synthetic(options: DatasetOptions, split: str) -> Dataset:
    from moa_depthclip.data.synthetic import SyntheticScenes

    count = options.train_num if split == "train" else options.test_num
    height, width = options.size
    return SyntheticScenes(count, height, width, options.seed, split)


def _nyu_mat(options: DatasetOptions, split: str) -> Dataset:
    from moa_depthclip.data.nyu import NYUDepthV2Mat

    _need("nyu-mat", options, "mat_path", "splits_path")
    return NYUDepthV2Mat(
        options.mat_path, options.splits_path, _side(split), ground_truth=options.ground_truth
    )


def _side(split: str) -> str:
    """The option prefix of a split: the validation split reads the ``test_*`` options."""
    return "train" if split == "train" else "test"


def _listed(name: str, options: DatasetOptions, split: str) -> tuple[str, str, str | None]:
    split = _side(split)
    root_key, files_key = f"{split}_root", f"{split}_filenames"
    if split == "train" and not options.train_root:
        root_key = "test_root"  # one root for both splits (the usual sync/KITTI layout)
    _need(name, options, root_key, files_key)
    gt_root = getattr(options, f"{split}_gt_root") or (options.test_gt_root if split == "train" else None)
    return getattr(options, root_key), getattr(options, files_key), gt_root


def _nyu_sync(options: DatasetOptions, split: str) -> Dataset:
    from moa_depthclip.data.nyu import NYU_DEPTH_SCALE, NYUSync

    root, files, gt_root = _listed("nyu-sync", options, split)
    return NYUSync(root, files, gt_root, depth_scale=options.depth_scale or NYU_DEPTH_SCALE)


def _kitti(options: DatasetOptions, split: str) -> Dataset:
    from moa_depthclip.data.kitti import KITTI_DEPTH_SCALE, KITTIEigen

    root, files, gt_root = _listed("kitti", options, split)
    return KITTIEigen(root, files, gt_root, depth_scale=options.depth_scale or KITTI_DEPTH_SCALE)


def _folder(options: DatasetOptions, split: str) -> Dataset:
    from moa_depthclip.data.folder import FolderPairs

    key = f"{_side(split)}_root"
    _need("folder", options, key)
    return FolderPairs(getattr(options, key), depth_scale=options.depth_scale or 1000.0)


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset: how to build a split, and the protocol its numbers are reported under."""

    name: str
    protocol: str
    description: str
    build: Callable[[DatasetOptions, str], Dataset]


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("synthetic", "synthetic", "rendered rooms (no files)", _synthetic),
        DatasetSpec("nyu-mat", "nyu", "NYU Depth V2 labeled .mat + splits.mat", _nyu_mat),
        DatasetSpec("nyu-sync", "nyu", "NYU Depth V2 sync layout + filenames files", _nyu_sync),
        DatasetSpec("kitti", "kitti", "KITTI Eigen split + filenames files", _kitti),
        DatasetSpec("folder", "nyu", "image/depth pairs in a folder", _folder),
    )
}
DATASET_ALIASES = {"nyu_mat": "nyu-mat", "nyu_sync": "nyu-sync"}
DATASET_NAMES = tuple(DATASETS)


def canonical_dataset_name(name: str) -> str:
    """The registry name of ``name`` (accepting the underscore spellings); DataError if unknown."""
    key = DATASET_ALIASES.get(name, name)
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    return key


def dataset_spec(name: str) -> DatasetSpec:
    return DATASETS[canonical_dataset_name(name)]


def build_dataset(name: str, options: DatasetOptions, split: str) -> Dataset:
    """Split ``"train"``, ``"val"`` (validation during training) or ``"test"`` (evaluation) of
    dataset ``name``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return dataset_spec(name).build(options, split)
