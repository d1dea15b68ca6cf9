"""Camera intrinsics: NYU Depth V2's Kinect colour camera and its rescaling to other image sizes.

One definition for the whole package (data loading, synthetic rendering, point-cloud export).
Pixel centres sit at integer coordinates, so rescaling maps a centre ``c`` at the reference size to
``(c + 0.5) * s - 0.5``; at the reference size nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

# Kinect colour-camera intrinsics of NYU Depth V2 at 640x480 (pixels), from the dataset's toolbox.
NYU_FX = 518.8579
NYU_FY = 519.4696
NYU_CX = 325.5824
NYU_CY = 253.7362
NYU_HEIGHT, NYU_WIDTH = 480, 640


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels (pixel centres at integer coordinates)."""

    fx: float
    fy: float
    cx: float
    cy: float

    def scaled(self, from_size: tuple[int, int], to_size: tuple[int, int]) -> Intrinsics:
        """These intrinsics for the same camera after resizing an image from ``from_size`` (H, W)."""
        sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
        return Intrinsics(
            self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5
        )

    @classmethod
    def nyu(cls, height: int = NYU_HEIGHT, width: int = NYU_WIDTH) -> Intrinsics:
        """NYU Depth V2's Kinect intrinsics for an image of ``height`` x ``width`` (rescaled from 480x640)."""
        return NYU_INTRINSICS.scaled((NYU_HEIGHT, NYU_WIDTH), (height, width))


NYU_INTRINSICS = Intrinsics(NYU_FX, NYU_FY, NYU_CX, NYU_CY)
