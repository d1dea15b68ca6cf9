"""The synthetic scenes as a PyTorch dataset (rendered on demand) and their export in the NYU "sync"
layout."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset

from moa_depthclip.data.cameras import Intrinsics
from moa_depthclip.data.io import save_depth_png, save_rgb
from moa_depthclip.data.synthetic.generator import make_scene
from moa_depthclip.data.synthetic.raycast import Rendered, render_scene
from moa_depthclip.data.synthetic.scene import SPLIT_CODES, Scene
from moa_depthclip.data.transforms import depth_to_tensor, image_to_tensor

PathLike = str | os.PathLike


class SyntheticScenes(Dataset):
    """``num_scenes`` procedurally rendered indoor RGB-D views, generated on the fly (see module doc)."""

    def __init__(
        self,
        num_scenes: int,
        height: int = 240,
        width: int = 320,
        seed: int = 0,
        split: str = "train",
        transform: Callable[[dict], dict] | None = None,
    ) -> None:
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be one of {sorted(SPLIT_CODES)}, got {split!r}")
        if num_scenes < 0 or height < 8 or width < 8:
            raise ValueError("num_scenes must be >= 0 and the size at least 8x8")
        self.num_scenes, self.height, self.width = int(num_scenes), int(height), int(width)
        self.seed, self.split, self.transform = int(seed), split, transform
        self.intrinsics = Intrinsics.nyu(self.height, self.width)
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return self.num_scenes

    def scene(self, index: int) -> Scene:
        if not 0 <= index < self.num_scenes:
            raise IndexError(f"scene index {index} out of range for {self.num_scenes} scenes")
        return make_scene(self.seed, self.split, index)

    def render(self, index: int) -> Rendered:
        return render_scene(self.scene(index), self.height, self.width, self.intrinsics)

    def name(self, index: int) -> str:
        return f"synthetic_{self.split}_{index:06d}"

    def __getitem__(self, index: int) -> dict:
        rendered = self.render(index)
        sample = {
            "image": image_to_tensor(rendered.image),
            "depth": depth_to_tensor(rendered.depth),
            "name": self.name(index),
            "focal": float(self.intrinsics.fx),
        }
        if self.transform is not None:
            sample = self.transform(sample)
        return sample


def export_sync_layout(
    out_dir: PathLike,
    num_scenes: int,
    height: int = 240,
    width: int = 320,
    seed: int = 0,
    split: str = "train",
    jpeg_quality: int = 95,
) -> Path:
    """Write scenes as ``SPLIT/rgb_XXXXX.jpg`` + ``SPLIT/sync_depth_XXXXX.png`` (uint16 mm) and a
    filenames file ``SPLIT_files.txt`` (``rgb depth focal`` lines), readable by :class:`NYUSync`.
    Returns the filenames-file path."""
    out_dir = Path(out_dir)
    dataset = SyntheticScenes(num_scenes, height, width, seed, split)
    lines = []
    for index in range(num_scenes):
        rendered = dataset.render(index)
        rgb = f"{split}/rgb_{index:05d}.jpg"
        depth = f"{split}/sync_depth_{index:05d}.png"
        save_rgb(out_dir / rgb, rendered.image, quality=jpeg_quality)
        save_depth_png(out_dir / depth, rendered.depth, scale=1000.0)
        lines.append(f"{rgb} {depth} {dataset.intrinsics.fx:.4f}")
    filenames = out_dir / f"{split}_files.txt"
    filenames.parent.mkdir(parents=True, exist_ok=True)
    filenames.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return filenames
