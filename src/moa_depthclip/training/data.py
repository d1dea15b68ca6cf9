"""Deterministic training data: sample order from (seed, epoch), augmentation from (seed, epoch, index).

Nothing here draws from a global random stream. That is what makes a resumed run equal an
uninterrupted one bit for bit, makes the result independent of the number of DataLoader workers,
and lets every process of a data-parallel run compute its shard without talking to the others:

* :class:`ShardedBatchSampler` shuffles with a generator seeded by ``(seed, epoch)``, cuts the
  permutation into global batches of ``batch_size * world_size * accumulation_steps`` samples, and
  hands each process its micro-batches; it can start in the middle of an epoch.
* It yields ``(epoch, index)`` keys, and :class:`SeededAugmentDataset` seeds the augmentation of
  each sample from ``(seed, epoch, index)``, so the epoch travels with the key into worker processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from moa_depthclip.data.registry import DatasetOptions, build_dataset
from moa_depthclip.data.transforms import TrainAugment, resize_depth, resize_image
from moa_depthclip.errors import DataError
from moa_depthclip.training.config import DataConfig

Key = tuple[int, int]  # (epoch, dataset index)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (SeedSequence mixes them; no collisions in practice)."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def seeded_generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(derived_seed(*parts))


class CachedDataset(Dataset):
    """Keeps each decoded sample in memory after the first access (small, slow-to-decode sets)."""

    def __init__(self, base: Dataset) -> None:
        self.base = base
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        if index not in self._cache:
            self._cache[index] = self.base[index]
        return self._cache[index]


class SeededAugmentDataset(Dataset):
    """Item ``(epoch, index)``: ``base[index]``, resized, then augmented with its own generator."""

    def __init__(
        self,
        base: Dataset,
        augment: Callable[[dict, torch.Generator], dict] | None,
        seed: int,
        resize_to: tuple[int, int] | None = None,
    ) -> None:
        self.base, self.augment, self.seed, self.resize_to = base, augment, int(seed), resize_to

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: Key) -> dict:
        epoch, index = key
        sample = dict(self.base[index])
        if self.resize_to is not None:
            sample["image"] = resize_image(sample["image"], self.resize_to)
            sample["depth"] = resize_depth(sample["depth"], self.resize_to)
        if self.augment is not None:
            sample = self.augment(sample, seeded_generator(self.seed, epoch, index))
        return sample


class ShardedBatchSampler(Sampler[list[Key]]):
    """Per-process micro-batches of ``(epoch, index)`` keys in a seeded order.

    Optimizer step ``s`` of an epoch uses samples ``perm[s*G:(s+1)*G]`` with
    ``G = batch_size * world_size * accumulation_steps``; micro-batch ``a`` of process ``r`` is the
    slice starting at ``(a * world_size + r) * batch_size``. A single process with
    ``accumulation_steps = world_size`` therefore sees exactly the samples of a multi-process step.
    The last incomplete global batch of an epoch is dropped so every step has the same size.
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        world_size: int = 1,
        rank: int = 0,
        accumulation_steps: int = 1,
        seed: int = 0,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of {world_size}")
        self.dataset_size, self.batch_size = int(dataset_size), int(batch_size)
        self.world_size, self.rank = int(world_size), int(rank)
        self.accumulation_steps, self.seed = int(accumulation_steps), int(seed)
        self.global_batch = self.batch_size * self.world_size * self.accumulation_steps
        if self.dataset_size < self.global_batch:
            raise DataError(
                f"the training set has {self.dataset_size} samples, fewer than one global batch "
                f"({self.batch_size} x {self.world_size} processes x {self.accumulation_steps} accumulation)"
            )
        self.epoch, self.start_step = 0, 0

    @property
    def steps_per_epoch(self) -> int:
        return self.dataset_size // self.global_batch

    def set_position(self, epoch: int, start_step: int = 0) -> None:
        """Iterate epoch ``epoch`` from optimizer step ``start_step`` (resume mid-epoch)."""
        self.epoch, self.start_step = int(epoch), int(start_step)

    def order(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.dataset_size, generator=seeded_generator(self.seed, epoch))

    def __iter__(self) -> Iterator[list[Key]]:
        order = self.order(self.epoch)
        for step in range(self.start_step, self.steps_per_epoch):
            chunk = order[step * self.global_batch : (step + 1) * self.global_batch]
            for micro in range(self.accumulation_steps):
                start = (micro * self.world_size + self.rank) * self.batch_size
                yield [(self.epoch, int(i)) for i in chunk[start : start + self.batch_size]]

    def __len__(self) -> int:
        return max(0, self.steps_per_epoch - self.start_step) * self.accumulation_steps


def collate(samples: list[dict]) -> dict[str, Any]:
    """Stack images and depths; keep names (and focal lengths, when every sample has one)."""
    batch: dict[str, Any] = {
        "image": torch.stack([s["image"] for s in samples]),
        "depth": torch.stack([s["depth"] for s in samples]),
        "name": [s.get("name", "") for s in samples],
    }
    if all("focal" in s for s in samples):
        batch["focal"] = torch.tensor([float(s["focal"]) for s in samples])
    return batch


def dataset_options(config: DataConfig) -> DatasetOptions:
    """The registry's options from the training config (see ``data.registry.OPTION_SPELLINGS``)."""
    return DatasetOptions(
        mat_path=config.mat_path,
        splits_path=config.splits_path,
        ground_truth=config.ground_truth,
        train_root=config.data_root,
        train_gt_root=config.gt_root,
        train_filenames=config.train_filenames,
        test_root=config.val_root or config.data_root,
        test_gt_root=config.val_gt_root or config.gt_root,
        test_filenames=config.val_filenames,
        depth_scale=config.depth_scale,
        train_num=config.train_scenes,
        test_num=config.val_scenes,
        size=config.render_size,
        seed=config.synthetic_seed,
    )


def build_datasets(config: DataConfig) -> tuple[Dataset, Dataset]:
    """(train, validation) base datasets from the dataset registry, without training augmentation."""
    options = dataset_options(config)
    train = build_dataset(config.dataset, options, "train")
    val = build_dataset(config.dataset, options, "val")
    if config.cache:
        train, val = CachedDataset(train), CachedDataset(val)
    if config.val_limit is not None and config.val_limit < len(val):
        val = torch.utils.data.Subset(val, range(config.val_limit))
    return train, val


def training_view(base: Dataset, config: DataConfig, seed: int) -> SeededAugmentDataset:
    """The training dataset keyed by ``(epoch, index)``, with seeded augmentation (or none)."""
    augment = TrainAugment(crop_size=config.crop_size) if config.augment else None
    if augment is None and config.crop_size is not None:
        augment = TrainAugment(
            crop_size=config.crop_size,
            flip_prob=0.0,
            rotation_prob=0.0,
            jitter_prob=0.0,
            max_rotation_deg=0.0,
        )
    return SeededAugmentDataset(base, augment, seed, config.resize_to)
