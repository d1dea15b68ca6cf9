"""Image transforms shared by data loading, models and inference (no torchvision).

Images are float tensors in [0, 1] (CLIP normalisation happens inside the models); depth maps are
(1, H, W) metres with 0 = invalid. Geometric operations on depth use nearest-neighbour sampling so
that an invalid (0) pixel is never blended with a valid one into a fake in-between depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# CLIP's input normalisation (OpenAI CLIP preprocessing), applied inside the models.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# ImageNet's mean/std: what DepthCLIP's official evaluation normalises with (not CLIP's).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = {"clip": (CLIP_MEAN, CLIP_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}

Sample = dict


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8`` (H, W, 3) -> float (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def depth_to_tensor(depth: np.ndarray) -> torch.Tensor:
    """float (H, W) metres -> float (1, H, W)."""
    return torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None]


def round_to_multiple(value: int, multiple: int = 32) -> int:
    """Nearest positive multiple (ties round up), e.g. 240 -> 256, 375 -> 384 for 32."""
    return max(multiple, int(math.floor(value / multiple + 0.5)) * multiple)


def model_input_size(height: int, width: int, multiple: int = 32) -> tuple[int, int]:
    """The size an image is resized to so that it meets the model contract (multiples of 32)."""
    return round_to_multiple(height, multiple), round_to_multiple(width, multiple)


def scale_box(
    box: tuple[int, int, int, int], height: int, width: int, reference: tuple[int, int] = (480, 640)
) -> tuple[int, int, int, int]:
    """A (top, bottom, left, right) box defined at ``reference`` (H, W), scaled proportionally to an
    image of ``height`` x ``width`` (unchanged at the reference size)."""
    if (height, width) == tuple(reference):
        return box
    top, bottom, left, right = box
    sy, sx = height / reference[0], width / reference[1]
    return round(top * sy), round(bottom * sy), round(left * sx), round(right * sx)


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (C, H, W) or (B, C, H, W); antialiased when shrinking."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    batched = image.dim() == 4
    x = image if batched else image[None]
    shrinking = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrinking)
    return x if batched else x[0]


def resize_depth(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest resize of a (1, H, W) or (B, 1, H, W) ground-truth depth (never mixes invalid pixels)."""
    if tuple(depth.shape[-2:]) == tuple(size):
        return depth
    batched = depth.dim() == 4
    x = depth if batched else depth[None]
    x = F.interpolate(x, size=size, mode="nearest-exact")
    return x if batched else x[0]


def _rotate(image: torch.Tensor, depth: torch.Tensor, degrees: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate about the centre; uncovered corners become black (image) and 0 = invalid (depth)."""
    angle = math.radians(degrees)
    height, width = image.shape[-2:]
    cos, sin = math.cos(angle), math.sin(angle)
    # affine_grid works in normalised coordinates; correct for the aspect ratio so that the rotation
    # is rigid in pixels.
    aspect = width / height
    theta = torch.tensor([[cos, -sin / aspect, 0.0], [sin * aspect, cos, 0.0]], dtype=image.dtype)
    grid = F.affine_grid(theta[None], [1, 1, height, width], align_corners=False)
    rotated_image = F.grid_sample(
        image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    rotated_depth = F.grid_sample(
        depth[None], grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    return rotated_image[0], rotated_depth[0]


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


@dataclass
class TrainAugment:
    """Aligned training augmentation: small rotation, random crop, horizontal flip, colour jitter.

    Randomness comes from torch's generator (seeded per DataLoader worker by torch), so workers do not
    repeat each other's augmentations. ``crop_size`` None keeps the full image; a crop larger than the
    image is clipped to it.
    """

    crop_size: tuple[int, int] | None = None
    flip_prob: float = 0.5
    max_rotation_deg: float = 2.5
    rotation_prob: float = 0.5
    brightness: tuple[float, float] = (0.8, 1.2)
    contrast: tuple[float, float] = (0.8, 1.2)
    saturation: tuple[float, float] = (0.8, 1.2)
    gamma: tuple[float, float] = (0.9, 1.1)
    channel_gain: tuple[float, float] = (0.9, 1.1)
    jitter_prob: float = 0.8

    def __call__(self, sample: Sample, generator: torch.Generator | None = None) -> Sample:
        image, depth = sample["image"], sample["depth"]
        if self.max_rotation_deg > 0 and float(torch.rand((), generator=generator)) < self.rotation_prob:
            angle = _uniform(-self.max_rotation_deg, self.max_rotation_deg, generator)
            image, depth = _rotate(image, depth, angle)
        if self.crop_size is not None:
            image, depth = self._crop(image, depth, generator)
        if float(torch.rand((), generator=generator)) < self.flip_prob:
            image, depth = image.flip(-1), depth.flip(-1)
        if float(torch.rand((), generator=generator)) < self.jitter_prob:
            image = self._jitter(image, generator)
        out = dict(sample)
        out["image"], out["depth"] = image.contiguous(), depth.contiguous()
        return out

    def _crop(
        self, image: torch.Tensor, depth: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = image.shape[-2:]
        crop_h, crop_w = min(self.crop_size[0], height), min(self.crop_size[1], width)
        top = int(torch.randint(0, height - crop_h + 1, (), generator=generator))
        left = int(torch.randint(0, width - crop_w + 1, (), generator=generator))
        window = (slice(None), slice(top, top + crop_h), slice(left, left + crop_w))
        return image[window], depth[window]

    def _jitter(self, image: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        image = image.clamp(0, 1) ** _uniform(*self.gamma, generator)
        image = image * _uniform(*self.brightness, generator)
        gains = torch.tensor([_uniform(*self.channel_gain, generator) for _ in range(3)], dtype=image.dtype)
        image = image * gains[:, None, None]
        mean = image.mean()
        image = (image - mean) * _uniform(*self.contrast, generator) + mean
        gray = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
        image = (image - gray) * _uniform(*self.saturation, generator) + gray
        return image.clamp(0.0, 1.0)
