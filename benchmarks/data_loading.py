"""Is data loading ever the bottleneck? Images/s of every reader next to the training step's.

Readers, each on a fixture written on the fly in the real on-disk format at NYU's 480x640:

* ``nyu_mat``   - ``NYUDepthV2Mat`` on an official-layout ``nyu_depth_v2_labeled.mat`` (HDF5,
  MATLAB-transposed uint8 images, float32 filled and raw depths) plus ``splits.mat``;
* ``nyu_sync``  - ``NYUSync`` on the "sync" layout (``rgb_*.jpg`` + uint16 ``sync_depth_*.png``);
* ``synthetic`` - ``SyntheticScenes``, the procedural renderer, at the training render size and
  at 480x640 (training caches rendered scenes, so each is rendered once per run).

Each reader is timed alone (one process, no DataLoader workers) and with the training augmentation
(random 416x544 crop, flip, rotation, colour jitter) applied; a DataLoader with ``W`` workers
reads about ``W`` times that. The training step's images/s comes from the training section of the
same run (trainable set, batch 4): a reader keeps up when its images/s per worker is above it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import log

NYU_SIZE = (480, 640)
CROP = (416, 544)


def write_nyu_mat(folder: Path, count: int, height: int, width: int) -> tuple[Path, Path]:
    """A labeled .mat and splits.mat in the official layouts (MATLAB arrays seen reversed by h5py)."""
    import h5py
    import scipy.io

    rng = np.random.default_rng(0)
    mat = folder / "nyu_depth_v2_labeled.mat"
    with h5py.File(mat, "w") as handle:
        handle.create_dataset("images", data=rng.integers(0, 256, (count, 3, width, height), dtype=np.uint8))
        depth = rng.uniform(0.5, 9.5, (count, width, height)).astype(np.float32)
        handle.create_dataset("depths", data=depth)
        handle.create_dataset("rawDepths", data=depth)
    splits = folder / "splits.mat"
    # Every frame in the training split, one extra (missing-on-purpose) test index out of the way.
    scipy.io.savemat(
        splits, {"trainNdxs": np.arange(1, count + 1).reshape(-1, 1), "testNdxs": np.array([[count + 1]])}
    )
    return mat, splits


def write_nyu_sync(folder: Path, count: int, height: int, width: int) -> Path:
    """The sync layout: JPEG frames, uint16 millimetre PNG depths and a filenames file."""
    from moa_depthclip.data.io import save_depth_png, save_rgb

    rng = np.random.default_rng(0)
    scene = folder / "living_room_0001"
    scene.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(count):
        # Smooth content (as photographs are) so JPEG decoding costs what it costs on real frames.
        rows, cols = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
        image = np.stack([rows, cols, (rows + cols) / 2], axis=-1) * 200 + rng.uniform(
            0, 55, (height, width, 3)
        )
        save_rgb(scene / f"rgb_{i:05d}.jpg", image.astype(np.uint8))
        save_depth_png(
            scene / f"sync_depth_{i:05d}.png", (1.0 + 8.0 * rows * cols).astype(np.float32), 1000.0
        )
        lines.append(f"living_room_0001/rgb_{i:05d}.jpg living_room_0001/sync_depth_{i:05d}.png 518.8579")
    filenames = folder / "filenames.txt"
    filenames.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return filenames


def images_per_second(read: Callable[[int], Any], count: int, repeats: int) -> dict[str, float]:
    """Median and best images/s over ``repeats`` passes of ``count`` reads (after one untimed read)."""
    read(0)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for index in range(count):
            read(index)
        rates.append(count / (time.perf_counter() - start))
    return {"median": float(np.median(rates)), "max": float(max(rates))}


def run_data_loading(
    count: int = 16,
    repeats: int = 3,
    size: tuple[int, int] = NYU_SIZE,
    render_sizes: tuple[tuple[int, int], ...] = ((240, 320), NYU_SIZE),
    crop: tuple[int, int] = CROP,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Images/s of each reader, raw and with the training augmentation."""
    from moa_depthclip.data.nyu import NYUDepthV2Mat, NYUSync
    from moa_depthclip.data.synthetic import SyntheticScenes
    from moa_depthclip.data.transforms import TrainAugment

    augment = TrainAugment(crop_size=crop)
    generator = torch.Generator().manual_seed(0)
    records: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        root = Path(folder)
        log(f"data: writing {count} NYU frames as .mat and as the sync layout ({size[0]}x{size[1]})")
        mat, splits = write_nyu_mat(root, count, *size)
        filenames = write_nyu_sync(root / "sync", count, *size)
        readers: dict[str, tuple[Any, str]] = {
            "nyu_mat": (NYUDepthV2Mat(mat, splits, split="train"), f"{size[0]}x{size[1]}"),
            "nyu_sync": (NYUSync(root / "sync", filenames), f"{size[0]}x{size[1]}"),
        }
        for height, width in render_sizes:
            scenes = SyntheticScenes(count, height, width, seed=0, split="train")
            readers[f"synthetic_{height}x{width}"] = (scenes, f"{height}x{width}")
        for name, (dataset, shape) in readers.items():
            log(f"data: {name}")
            passes = 1 if name.startswith("synthetic") else repeats  # rendering is deterministic and slow
            raw = images_per_second(lambda i, d=dataset: d[i], count, passes)
            augmented = images_per_second(lambda i, d=dataset: augment(dict(d[i]), generator), count, passes)
            records[name] = {"size": shape, "images_per_second": raw, "with_augmentation": augmented}
    return {"count": count, "crop": list(crop), "readers": records}


def compare_with_training(section: dict[str, Any], training: list[dict[str, Any]] | None) -> None:
    """Add, per reader, its images/s over the training step's (the trainable set) at each size."""
    if not training:
        return
    steps = {f"{r['size'][0]}x{r['size'][1]}": r["moa"]["throughput"]["median"] for r in training}
    section["training_images_per_second"] = steps
    for record in section["readers"].values():
        rate = record["with_augmentation"]["median"]
        record["vs_training_step"] = {size: rate / step for size, step in steps.items()}


def to_markdown(section: dict[str, Any]) -> list[str]:
    steps = section.get("training_images_per_second", {})
    lines = [
        "## Data loading vs the training step",
        "",
        f"Images/s of each reader in one process (no DataLoader workers), raw and with the training "
        f"augmentation (random {section['crop'][0]}x{section['crop'][1]} crop, flip, rotation, colour "
        f"jitter), on {section['count']} frames written on the fly in the real formats. "
        + (
            "Training step (trainable set, same run): "
            + ", ".join(f"{v:.2f} img/s at {k}" for k, v in steps.items())
            + ". `x step` = reader images/s / step images/s (>1: one worker keeps up)."
            if steps
            else "The training section did not run: no step rate to compare with."
        ),
        "",
        "| reader | frame | img/s | img/s with augmentation | "
        + " | ".join(f"x step {k}" for k in steps)
        + (" |" if steps else ""),
        "| --- | --- | --- | --- |" + " --- |" * len(steps),
    ]
    for name, record in section["readers"].items():
        ratios = record.get("vs_training_step", {})
        lines.append(
            f"| {name} | {record['size']} | {record['images_per_second']['median']:.1f} | "
            f"{record['with_augmentation']['median']:.1f} |" + "".join(f" {ratios[k]:.1f} |" for k in steps)
        )
    lines.append("")
    return lines
