"""The scene description: room faces, materials, furniture boxes, wall decals, lights and the camera.

Plain data; ``generator`` samples it, ``raycast`` renders it. All lengths in metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
MAX_SCENE_DEPTH = 10.0  # rooms are sized so that no z-depth exceeds NYU's 10 m range

# Room faces: index = 2 * axis + (1 if the face is at the maximum coordinate of that axis).
FACE_NAMES = ("wall_x0", "wall_x1", "floor", "ceiling", "wall_z0", "wall_z1")
FLOOR, CEILING = 2, 3
WALL_FACES = (0, 1, 4, 5)


@dataclass
class Material:
    """A procedural surface texture, defined in metres on the surface plane."""

    kind: str  # "plain", "tiles", "bricks", "planks", "stripes", "checker"
    color: np.ndarray
    color2: np.ndarray
    cell: tuple[float, float] = (0.5, 0.5)  # pattern period along (s, t) in metres
    line_width: float = 0.01  # grout / seam width in metres
    variation: float = 0.1  # per-cell brightness variation
    noise_amp: float = 0.1
    noise_scale: float = 2.0  # cycles per metre of the base noise octave
    swap: bool = False  # exchange s and t (rotates the pattern by 90 degrees)
    seed: int = 0


@dataclass
class Box:
    """An axis-aligned box ``lo <= p <= hi`` (metres) with one material."""

    lo: np.ndarray
    hi: np.ndarray
    material: Material
    casts_shadow: bool = True


@dataclass
class Decal:
    """A rectangle ``s0 <= s <= s1, t0 <= t <= t1`` painted on a room face (picture, door, window)."""

    face: int
    rect: tuple[float, float, float, float]
    material: Material
    emission: float = 0.0


@dataclass
class Light:
    position: np.ndarray
    color: np.ndarray
    power: float


@dataclass
class Scene:
    """Everything needed to render one view; all lengths in metres, angles in radians."""

    room: np.ndarray  # (size_x, size_y = height, size_z); the room spans [0, room]
    camera: np.ndarray  # camera centre
    yaw: float  # rotation about the vertical axis (0 looks along +z)
    pitch: float  # positive looks up
    roll: float
    faces: list[Material]  # one per room face, indexed as FACE_NAMES
    boxes: list[Box] = field(default_factory=list)
    decals: list[Decal] = field(default_factory=list)
    lights: list[Light] = field(default_factory=list)
    ambient: float = 0.25
    exposure: float = 0.8  # the 97th luminance percentile is mapped to this value
    gamma: float = 2.2
    noise_std: float = 0.01
    vignette: float = 0.2
    seed: int = 0


def camera_to_world(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation taking camera coordinates (x right, y down, z forward) to world (y up)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    roll_m = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    flip_y = np.diag([1.0, -1.0, 1.0])
    pitch_m = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    yaw_m = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    return yaw_m @ pitch_m @ flip_y @ roll_m
