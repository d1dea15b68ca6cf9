"""Datasets that are a list of (image file, depth file) pairs, and the filenames-file format.

The NYU "sync" layout, the KITTI Eigen split and plain folders all reduce to such a list; this module
holds the one reader for them so that every layout fails and reports skipped entries the same way.

Filenames file: one sample per line, ``rgb_path depth_path [focal]``, paths relative to a root,
whitespace separated. Blank lines and lines starting with ``#`` are ignored. A depth path of ``None``
means "no ground truth for this image" (the KITTI Eigen test list has such lines): the entry is
skipped and recorded in ``skipped``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from moa_depthclip.data.io import check_same_size, load_rgb, read_depth
from moa_depthclip.data.transforms import depth_to_tensor, image_to_tensor
from moa_depthclip.errors import DataError

PathLike = str | os.PathLike


@dataclass(frozen=True)
class PairEntry:
    """One sample: absolute image and depth paths, a display name and the focal length if known."""

    image_path: Path
    depth_path: Path
    name: str
    focal: float | None = None


def read_filenames_file(
    path: PathLike, image_root: PathLike, depth_root: PathLike | None = None
) -> tuple[list[PairEntry], list[str]]:
    """Parse a filenames file into entries; return (entries, skipped lines without ground truth)."""
    path = Path(path)
    image_root = Path(image_root)
    depth_root = Path(depth_root) if depth_root is not None else image_root
    if not path.is_file():
        raise DataError(f"filenames file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"filenames file cannot be read as text: {path} ({error})") from error
    entries: list[PairEntry] = []
    skipped: list[str] = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) not in (2, 3):
            raise DataError(
                f"{path}:{number}: expected 'rgb_path depth_path [focal]', got {len(fields)} fields: {line!r}"
            )
        focal = None
        if len(fields) == 3:
            try:
                focal = float(fields[2])
            except ValueError as error:
                raise DataError(f"{path}:{number}: focal length is not a number: {fields[2]!r}") from error
        if fields[1] == "None":
            skipped.append(fields[0])
            continue
        name = str(Path(fields[0]).with_suffix(""))
        entries.append(PairEntry(image_root / fields[0], depth_root / fields[1], name, focal))
    if not entries:
        raise DataError(f"filenames file lists no sample with ground truth: {path}")
    return entries, skipped


class PairDataset(Dataset):
    """A dataset over :class:`PairEntry` items; depth PNGs are divided by ``depth_scale``.

    ``skipped`` lists entries that were dropped because they have no ground truth; the evaluation
    runner reports their number.
    """

    def __init__(
        self,
        entries: list[PairEntry],
        depth_scale: float,
        transform: Callable[[dict], dict] | None = None,
        skipped: list[str] | None = None,
    ) -> None:
        self.entries = list(entries)
        self.depth_scale = float(depth_scale)
        self.transform = transform
        self.skipped = list(skipped or [])

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        image = load_rgb(entry.image_path)
        # A map without valid pixels is a sample with nothing to score (evaluation lists it), not an
        # error that stops the run; NaN / inf pixels masked to 0 are counted in the sample.
        depth, masked = read_depth(entry.depth_path, self.depth_scale, allow_empty=True)
        check_same_size(image, depth, entry.image_path, entry.depth_path)
        sample = {"image": image_to_tensor(image), "depth": depth_to_tensor(depth), "name": entry.name}
        sample["masked_pixels"] = masked
        if entry.focal is not None:
            sample["focal"] = entry.focal
        if self.transform is not None:
            sample = self.transform(sample)
        return sample
