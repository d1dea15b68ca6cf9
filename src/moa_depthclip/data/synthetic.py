"""Embedded default dataset: procedurally generated indoor RGB-D scenes rendered by ray casting.

Why this exists: NYU and KITTI cannot be downloaded everywhere, but the whole pipeline (train,
evaluate, predict) should run anywhere. These scenes have real geometry, so the depth is exactly the
depth of the picture, and they carry the monocular cues a network can learn from:

* perspective of a rectangular room (floor/wall/ceiling lines converge) seen by a pinhole camera with
  NYU-like intrinsics at human height with random yaw/pitch/roll;
* texture gradient: tiles, planks, bricks, stripes and noise defined in metres on the surfaces, so
  their projected size shrinks with distance (anti-aliased by the pixel footprint);
* furniture-like boxes standing on the floor (cabinets, tables with legs, sofas, shelves, cubes),
  which occlude the room and cast shadows;
* Lambertian shading from 1-2 point lights with distance falloff, ambient light darkened near room
  corners and object contacts (a cheap ambient-occlusion approximation).

Shortcuts are broken on purpose: lights are placed anywhere under the ceiling (not at the camera), so
brightness is not a function of depth; albedo, textures, room size, camera pose, exposure and colour
cast are random; wall decals (pictures, doors, bright windows) add brightness changes without depth
changes.

Depth is z-depth along the optical axis in metres (as NYU), every pixel valid. Scene ``i`` of
``(seed, split)`` depends on nothing else (not on order, batch or worker): its random stream is
``SeedSequence([seed, split_code, i])``, and the splits use different codes, so they never share a
scene.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from moa_depthclip.data.io import save_depth_png, save_rgb
from moa_depthclip.data.nyu import NYU_CX, NYU_CY, NYU_FX, NYU_FY, NYU_HEIGHT, NYU_WIDTH
from moa_depthclip.data.transforms import depth_to_tensor, image_to_tensor

PathLike = str | os.PathLike

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
MAX_SCENE_DEPTH = 10.0  # rooms are sized so that no z-depth exceeds NYU's 10 m range

# Room faces: index = 2 * axis + (1 if the face is at the maximum coordinate of that axis).
FACE_NAMES = ("wall_x0", "wall_x1", "floor", "ceiling", "wall_z0", "wall_z1")
FLOOR, CEILING = 2, 3
WALL_FACES = (0, 1, 4, 5)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels (pixel centres at integer coordinates)."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def nyu_like(cls, height: int, width: int) -> Intrinsics:
        """NYU Depth V2's Kinect intrinsics rescaled from 640x480 to ``width`` x ``height``."""
        sx, sy = width / NYU_WIDTH, height / NYU_HEIGHT
        return cls(NYU_FX * sx, NYU_FY * sy, (NYU_CX + 0.5) * sx - 0.5, (NYU_CY + 0.5) * sy - 0.5)


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


# ----------------------------------------------------------------------------------------------
# Procedural textures


_PRIME_X, _PRIME_Y = np.uint32(0x8DA6B343), np.uint32(0xD8163841)


def _mix(h: np.ndarray) -> np.ndarray:
    """Scramble uint32 keys (xorshift-multiply) -> uniform float32 in [0, 1)."""
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return h.astype(np.float32) * np.float32(1.0 / 4294967296.0)


def _seed_key(seed: int) -> np.uint32:
    return np.uint32((seed * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF)


def _hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic hash of integer-valued lattice coordinates (given as floats) -> [0, 1)."""
    hx = ix.astype(np.int32).view(np.uint32) * _PRIME_X
    hy = iy.astype(np.int32).view(np.uint32) * _PRIME_Y
    return _mix(hx ^ hy ^ _seed_key(seed))


def _value_noise(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    key = _seed_key(seed)
    ix0, iy0 = x0.astype(np.int32), y0.astype(np.int32)
    hx0, hx1 = ix0.view(np.uint32) * _PRIME_X, (ix0 + 1).view(np.uint32) * _PRIME_X
    hy0, hy1 = (iy0.view(np.uint32) * _PRIME_Y) ^ key, ((iy0 + 1).view(np.uint32) * _PRIME_Y) ^ key
    a, b = _mix(hx0 ^ hy0), _mix(hx1 ^ hy0)
    c, d = _mix(hx0 ^ hy1), _mix(hx1 ^ hy1)
    return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy


def _fbm(x: np.ndarray, y: np.ndarray, seed: int, footprint: np.ndarray, octaves: int = 2) -> np.ndarray:
    """Fractal noise in [-1, 1]; octaves finer than ~2 pixels fade out (no aliasing shimmer)."""
    total = np.zeros_like(x)
    frequency, amplitude = 1.0, 0.5
    for octave in range(octaves):
        fade = np.clip(1.5 - 2.0 * footprint * frequency, 0.0, 1.0)
        total += amplitude * fade * (2 * _value_noise(x * frequency, y * frequency, seed + octave) - 1)
        frequency *= 3.1
        amplitude *= 0.6
    return total


def _smoothstep(edge0: np.ndarray, edge1: np.ndarray, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / np.maximum(edge1 - edge0, 1e-6), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _cells(
    s: np.ndarray, t: np.ndarray, cell: tuple[float, float], stagger: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell indices and the distance (metres) to the nearest cell border for a grid pattern."""
    u, v = s / cell[0], t / cell[1]
    row = np.floor(v)
    if stagger == "half":
        u = u + 0.5 * np.mod(row, 2)
    elif stagger == "random":
        u = u + _hash(row, np.zeros_like(row), seed + 7)
    col = np.floor(u)
    du, dv = u - col, v - row
    border = np.minimum(np.minimum(du, 1 - du) * cell[0], np.minimum(dv, 1 - dv) * cell[1])
    return col, row, border


def shade_material(material: Material, s: np.ndarray, t: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Albedo (N, 3) of ``material`` at surface coordinates (s, t) in metres."""
    if material.swap:
        s, t = t, s
    base, second = material.color.astype(np.float32), material.color2.astype(np.float32)
    kind = material.kind
    noise = _fbm(
        s * material.noise_scale, t * material.noise_scale, material.seed, footprint * material.noise_scale
    )
    if kind == "plain":
        albedo = base[None] * (1 + material.noise_amp * noise)[:, None]
    elif kind in ("tiles", "bricks", "planks", "checker"):
        stagger = {"tiles": "none", "checker": "none", "bricks": "half", "planks": "random"}[kind]
        col, row, border = _cells(s, t, material.cell, stagger, material.seed)
        cell_rand = _hash(col, row, material.seed + 1)
        if kind == "checker":
            mix = np.mod(col + row, 2)
            smallest = min(material.cell)
            mix = 0.5 + (mix - 0.5) * _smoothstep(0.0 * footprint, footprint, border) * np.clip(
                1.5 - footprint / smallest * 2, 0, 1
            )
        else:
            mix = 0.35 * _hash(col, row, material.seed + 2)
        cell_color = base[None] * (1 - mix[:, None]) + second[None] * mix[:, None]
        cell_color = cell_color * (1 + material.variation * (2 * cell_rand - 1))[:, None]
        if kind == "planks":
            grain_phase = t / material.cell[1] * 9.0 + 3.0 * noise
            grain_fade = np.clip(1.5 - footprint / material.cell[1] * 8, 0, 1)
            cell_color = cell_color * (1 + 0.08 * np.sin(2 * np.pi * grain_phase) * grain_fade)[:, None]
        cell_color = cell_color * (1 + material.noise_amp * noise)[:, None]
        half = 0.5 * material.line_width
        inside = _smoothstep(half - 0.5 * footprint, half + 0.5 * footprint, border)
        grout = (base * 0.45 + 0.1)[None] if kind != "checker" else cell_color
        albedo = cell_color * inside[:, None] + grout * (1 - inside[:, None])
    elif kind == "stripes":
        phase = s / material.cell[0]
        wave = 0.5 + 0.5 * np.cos(2 * np.pi * phase)
        wave = 0.5 + (wave - 0.5) * np.clip(1.5 - footprint / material.cell[0] * 4, 0, 1)
        albedo = base[None] * (1 - wave[:, None]) + second[None] * wave[:, None]
        albedo = albedo * (1 + material.noise_amp * noise)[:, None]
    else:
        raise ValueError(f"unknown material kind {kind!r}")
    return np.clip(albedo, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Ray casting


def _safe_inverse(d: np.ndarray) -> np.ndarray:
    tiny = np.float32(1e-12)
    return np.float32(1.0) / np.where(np.abs(d) < tiny, np.where(d < 0, -tiny, tiny), d)


# Geometry is kept as structure-of-arrays, (3, N): numpy reduces slowly over a trailing axis of 3.


def _slab(
    origins: np.ndarray, inv_dir: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Slab test of M rays against one box -> (entry distance, inf for a miss; entry axis).

    ``origins`` is (3,) for rays sharing an origin or (3, M); ``inv_dir`` is (3, M). Rays starting
    inside the box count as a miss.
    """
    m = inv_dir.shape[1]
    t_near = np.full(m, -np.inf, dtype=np.float32)
    t_far = np.full(m, np.inf, dtype=np.float32)
    axis = np.zeros(m, dtype=np.int64)
    for a in range(3):
        t1 = (lo[a] - origins[a]) * inv_dir[a]
        t2 = (hi[a] - origins[a]) * inv_dir[a]
        t_min = np.minimum(t1, t2)
        axis = np.where(t_min > t_near, a, axis)
        t_near = np.maximum(t_near, t_min)
        t_far = np.minimum(t_far, np.maximum(t1, t2))
    hit = (t_near <= t_far) & (t_near > 1e-5)
    return np.where(hit, t_near, np.float32(np.inf)), axis


def _segment_may_hit(fixed: np.ndarray, ends: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Conservative culling: can the segment fixed -> end (ends (3, N)) touch the box?

    Bounding-box overlap; with one end fixed each axis needs at most one comparison.
    """
    may = np.ones(ends.shape[1], dtype=bool)
    for a in range(3):
        if fixed[a] > hi[a]:
            may &= ends[a] <= hi[a]
        elif fixed[a] < lo[a]:
            may &= ends[a] >= lo[a]
    return may


def _shadowed(points: np.ndarray, light: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """True where a shadow-casting box lies between a surface point ((3, N)) and the light."""
    blocked = np.zeros(points.shape[1], dtype=bool)
    casters = [box for box in boxes if box.casts_shadow]
    if not casters:
        return blocked
    # Lights hang above the furniture: points above every caster's top cannot be in shadow.
    top = max(float(box.hi[1]) for box in casters)
    low = np.flatnonzero(points[1] <= top) if light[1] > top else np.arange(points.shape[1])
    low_points = points[:, low]
    low_blocked = np.zeros(len(low), dtype=bool)
    for box in casters:
        candidates = np.flatnonzero(_segment_may_hit(light, low_points, box.lo, box.hi) & ~low_blocked)
        if len(candidates) == 0:
            continue
        start = low_points[:, candidates]
        direction = light[:, None] - start
        t_hit, _ = _slab(start + 1e-3 * direction, _safe_inverse(direction), box.lo, box.hi)
        low_blocked[candidates[t_hit < 1.0]] = True
    blocked[low] = low_blocked
    return blocked


def _pick(axis: np.ndarray, values: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """values[axis[i]][i] for each i."""
    return np.where(axis == 0, values[0], np.where(axis == 1, values[1], values[2]))


@dataclass
class Rendered:
    """A rendered view: ``image`` uint8 (H, W, 3), ``depth`` float32 (H, W) z-depth in metres."""

    image: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics


@dataclass
class _Hits:
    """Primary-ray hits, one entry per pixel (structure of arrays)."""

    depth: np.ndarray  # (N,) z-depth
    surface: np.ndarray  # (N,) 0..5 room faces, 6 + k box k
    axis: np.ndarray  # (N,) axis of the surface normal
    normal_sign: np.ndarray  # (N,) +-1: the normal is normal_sign * e_axis
    points: np.ndarray  # (3, N) world hit points
    footprint: np.ndarray  # (N,) approximate pixel footprint on the surface, metres


def _cast_primary(scene: Scene, k: Intrinsics, us: np.ndarray, vs: np.ndarray) -> _Hits:
    f32 = np.float32
    rotation = camera_to_world(scene.yaw, scene.pitch, scene.roll).astype(f32)
    # World ray directions (3, N), unnormalised: camera z = 1, so the ray parameter is the z-depth.
    dirs = rotation[:, 0:1] * us[None] + rotation[:, 1:2] * vs[None] + rotation[:, 2:3]
    origin = scene.camera.astype(f32)
    room = scene.room.astype(f32)
    inv = _safe_inverse(dirs)

    # Exit point of the room (the camera is inside it).
    t_exit = [np.maximum((0 - origin[a]) * inv[a], (room[a] - origin[a]) * inv[a]) for a in range(3)]
    first_x = (t_exit[0] <= t_exit[1]) & (t_exit[0] <= t_exit[2])
    axis = np.where(first_x, 0, np.where(t_exit[1] <= t_exit[2], 1, 2))
    depth = np.minimum(np.minimum(t_exit[0], t_exit[1]), t_exit[2])
    surface = 2 * axis + (_pick(axis, (dirs[0], dirs[1], dirs[2])) > 0)

    exits = origin[:, None] + depth[None] * dirs
    for index, box in enumerate(scene.boxes):
        candidates = np.flatnonzero(_segment_may_hit(origin, exits, box.lo, box.hi))
        if len(candidates) == 0:
            continue
        t_box, box_axis = _slab(origin, inv[:, candidates], box.lo, box.hi)
        closer = t_box < depth[candidates]
        chosen = candidates[closer]
        depth[chosen] = t_box[closer]
        surface[chosen] = 6 + index
        axis[chosen] = box_axis[closer]

    points = origin[:, None] + depth[None] * dirs
    dir_along_normal = _pick(axis, (dirs[0], dirs[1], dirs[2]))
    ray_length = np.sqrt(dirs[0] ** 2 + dirs[1] ** 2 + dirs[2] ** 2)
    cos_view = np.abs(dir_along_normal) / ray_length
    footprint = depth * ray_length / (0.5 * (k.fx + k.fy)) / np.maximum(cos_view, 0.15)
    return _Hits(depth, surface, axis, -np.sign(dir_along_normal), points, footprint)


def _albedo(scene: Scene, hits: _Hits) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel albedo (N, 3) and emission (N,) from the surface materials and wall decals."""
    n = hits.depth.shape[0]
    # Surface coordinates (s, t) in metres: the two world axes spanning each face.
    s_coord = np.where(hits.axis == 0, hits.points[2], hits.points[0])
    t_coord = np.where(hits.axis == 1, hits.points[2], hits.points[1])
    albedo = np.zeros((n, 3), dtype=np.float32)
    emission = np.zeros(n, dtype=np.float32)
    materials = list(scene.faces) + [b.material for b in scene.boxes]
    # Pixels grouped by surface once (a stable sort), then by material: one shading call per material.
    surface = hits.surface.astype(np.int16)  # small integers sort by radix sort: fast
    order = np.argsort(surface, kind="stable")
    bounds = np.searchsorted(surface[order], np.arange(len(materials) + 1))
    by_material: dict[int, list[int]] = {}
    for index, material in enumerate(materials):
        by_material.setdefault(id(material), []).append(index)
    for indices in by_material.values():
        pixels = np.concatenate([order[bounds[i] : bounds[i + 1]] for i in indices])
        if len(pixels):
            material = materials[indices[0]]
            albedo[pixels] = shade_material(
                material, s_coord[pixels], t_coord[pixels], hits.footprint[pixels]
            )
    for decal in scene.decals:
        s0, t0, s1, t1 = decal.rect
        on_face = order[bounds[decal.face] : bounds[decal.face + 1]]
        s_face, t_face = s_coord[on_face], t_coord[on_face]
        pixels = on_face[(s_face >= s0) & (s_face <= s1) & (t_face >= t0) & (t_face <= t1)]
        if len(pixels):
            albedo[pixels] = shade_material(
                decal.material, s_coord[pixels], t_coord[pixels], hits.footprint[pixels]
            )
            emission[pixels] = decal.emission
    return albedo, emission


def _irradiance(scene: Scene, hits: _Hits) -> np.ndarray:
    """Incoming light (N, 3): occluded ambient plus shadowed Lambertian point lights with falloff."""
    f32 = np.float32
    n = hits.depth.shape[0]
    occlusion = _ambient_occlusion(hits.points, hits.surface, hits.axis, scene.room.astype(f32), scene.boxes)
    light = np.empty((n, 3), dtype=f32)
    light[:] = (scene.ambient * occlusion)[:, None]
    points = hits.points
    for lamp in scene.lights:
        position = lamp.position.astype(f32)
        to_light = position[:, None] - points
        distance2 = to_light[0] ** 2 + to_light[1] ** 2 + to_light[2] ** 2
        cos_light = hits.normal_sign * _pick(hits.axis, (to_light[0], to_light[1], to_light[2]))
        cos_light /= np.sqrt(distance2)
        lit = np.flatnonzero(cos_light > 0)
        visible = np.zeros(n, dtype=bool)
        visible[lit] = ~_shadowed(points[:, lit], position, scene.boxes)
        # 0.25 m^2 softening: an area light of ~0.5 m does not blow up next to the bulb.
        irradiance = lamp.power * np.where(visible, cos_light, 0.0) / (distance2 + 0.25)
        light += irradiance[:, None] * lamp.color.astype(f32)[None]
    return light


def _develop(scene: Scene, radiance: np.ndarray, us: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """Camera response: auto-exposure (on a pixel subsample), vignetting, sensor noise, gamma."""
    f32 = np.float32
    n = radiance.shape[0]
    luminance = 0.299 * radiance[::7, 0] + 0.587 * radiance[::7, 1] + 0.114 * radiance[::7, 2]
    k97 = int(0.97 * (len(luminance) - 1))
    white = max(float(np.partition(luminance, k97)[k97]), 1e-6)
    gain = f32(scene.exposure / white) * (1 - f32(scene.vignette / 0.7) * (us**2 + vs**2))
    rng = np.random.default_rng(scene.seed)
    noise = (rng.random(n, dtype=f32) - f32(0.5)) * f32(scene.noise_std * math.sqrt(12.0))
    linear = radiance * gain[:, None] + noise[:, None]
    # Gamma through a 12-bit lookup table: one gather instead of log/exp per channel.
    levels = 4095
    table = np.round(np.linspace(0.0, 1.0, levels + 1) ** (1.0 / scene.gamma) * 255).astype(np.uint8)
    codes = (np.clip(linear, 0.0, 1.0) * f32(levels) + f32(0.5)).astype(np.int32)
    return table[codes]


def render_scene(scene: Scene, height: int, width: int, intrinsics: Intrinsics | None = None) -> Rendered:
    """Ray-cast ``scene`` through a pinhole camera: one primary ray per pixel, one shadow ray per light."""
    k = intrinsics or Intrinsics.nyu_like(height, width)
    us = np.tile((np.arange(width, dtype=np.float32) - k.cx) / k.fx, height)
    vs = np.repeat((np.arange(height, dtype=np.float32) - k.cy) / k.fy, width)
    hits = _cast_primary(scene, k, us, vs)
    albedo, emission = _albedo(scene, hits)
    radiance = albedo * _irradiance(scene, hits) + emission[:, None]
    image = _develop(scene, radiance, us, vs).reshape(height, width, 3)
    return Rendered(image, hits.depth.reshape(height, width).astype(np.float32), k)


def _ambient_occlusion(
    points: np.ndarray, surface: np.ndarray, axis: np.ndarray, room: np.ndarray, boxes: list[Box]
) -> np.ndarray:
    """Darken ambient light near concave room edges and where boxes meet the floor (approximation)."""
    radius, strength = 0.25, 0.45
    occlusion = np.ones(points.shape[1], dtype=np.float32)
    on_room = surface < 6
    for plane_axis in range(3):
        # distance to the two room planes of this axis, for room faces perpendicular to another axis
        distance = np.minimum(points[plane_axis], room[plane_axis] - points[plane_axis])
        occlusion *= np.where(on_room & (axis != plane_axis), 1 - strength * np.exp(-distance / radius), 1.0)
    occlusion *= np.where(on_room, 1.0, 1 - strength * np.exp(-points[1] / radius))
    floor = np.flatnonzero(surface == FLOOR)
    if len(floor):
        fx, fz = points[0, floor], points[2, floor]
        floor_occlusion = np.ones(len(floor), dtype=np.float32)
        for box in boxes:
            if box.lo[1] > 0.05:
                continue
            dx = np.maximum(np.maximum(box.lo[0] - fx, fx - box.hi[0]), 0)
            dz = np.maximum(np.maximum(box.lo[2] - fz, fz - box.hi[2]), 0)
            floor_occlusion *= 1 - strength * np.exp(-np.sqrt(dx**2 + dz**2) / radius)
        occlusion[floor] *= floor_occlusion
    return occlusion


# ----------------------------------------------------------------------------------------------
# Random scenes

_WALL_COLORS = [(0.85, 0.82, 0.75), (0.9, 0.9, 0.88), (0.7, 0.75, 0.8), (0.8, 0.72, 0.6), (0.65, 0.7, 0.6),
                (0.88, 0.8, 0.8), (0.55, 0.6, 0.68), (0.75, 0.68, 0.55)]  # fmt: skip
_WOOD_COLORS = [(0.55, 0.38, 0.22), (0.7, 0.52, 0.33), (0.4, 0.27, 0.17), (0.8, 0.65, 0.45), (0.3, 0.2, 0.14)]
_TILE_COLORS = [(0.85, 0.85, 0.82), (0.6, 0.6, 0.62), (0.7, 0.45, 0.35), (0.3, 0.3, 0.32), (0.75, 0.7, 0.6)]
_FABRIC_COLORS = [(0.5, 0.15, 0.15), (0.2, 0.3, 0.5), (0.3, 0.45, 0.3), (0.6, 0.55, 0.5), (0.15, 0.15, 0.17),
                  (0.75, 0.6, 0.3), (0.4, 0.35, 0.45)]  # fmt: skip


def _jitter_color(rng: np.random.Generator, palette: list, spread: float = 0.08) -> np.ndarray:
    base = np.array(palette[rng.integers(len(palette))], dtype=np.float32)
    return np.clip(base * rng.uniform(0.75, 1.15) + rng.normal(0, spread, 3), 0.03, 0.97).astype(np.float32)


def _random_color(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.08, 0.9, 3).astype(np.float32)


def _material(rng: np.random.Generator, role: str) -> Material:
    seed = int(rng.integers(0, 2**31 - 1))
    if role == "floor":
        kind = rng.choice(["planks", "tiles", "plain", "checker", "tiles"], p=[0.4, 0.25, 0.15, 0.05, 0.15])
        if kind == "planks":
            color = _jitter_color(rng, _WOOD_COLORS)
            cell = (rng.uniform(0.8, 2.2), rng.uniform(0.08, 0.25))
            return Material("planks", color, color * rng.uniform(0.7, 1.1), cell, rng.uniform(0.002, 0.008),
                            rng.uniform(0.08, 0.2), 0.08, rng.uniform(1.0, 4.0), bool(rng.random() < 0.5), seed)  # fmt: skip
        if kind == "plain":  # carpet
            color = _jitter_color(rng, _FABRIC_COLORS + _TILE_COLORS)
            return Material("plain", color, color, noise_amp=rng.uniform(0.1, 0.3),
                            noise_scale=rng.uniform(2.0, 8.0), seed=seed)  # fmt: skip
        size = rng.uniform(0.2, 0.7)
        color = _jitter_color(rng, _TILE_COLORS)
        second = _jitter_color(rng, _TILE_COLORS) if kind == "checker" else color * rng.uniform(0.8, 1.0)
        return Material(str(kind), color, second, (size, size * rng.choice([1.0, 1.0, 2.0])),
                        rng.uniform(0.005, 0.02), rng.uniform(0.03, 0.15), 0.05, rng.uniform(1, 4), False, seed)  # fmt: skip
    if role == "wall":
        kind = rng.choice(["plain", "stripes", "bricks", "tiles"], p=[0.55, 0.2, 0.15, 0.1])
        color = _jitter_color(rng, _WALL_COLORS, 0.05)
        if kind == "plain":
            return Material("plain", color, color, noise_amp=rng.uniform(0.03, 0.12),
                            noise_scale=rng.uniform(0.5, 3.0), seed=seed)  # fmt: skip
        if kind == "stripes":
            second = np.clip(color * rng.uniform(0.7, 1.0) + rng.normal(0, 0.05, 3), 0, 1).astype(np.float32)
            return Material("stripes", color, second, (rng.uniform(0.08, 0.4), 1.0), noise_amp=0.04,
                            noise_scale=2.0, seed=seed)  # fmt: skip
        if kind == "bricks":
            color = _jitter_color(rng, [(0.6, 0.3, 0.22), (0.75, 0.7, 0.62), (0.5, 0.45, 0.4)])
            return Material("bricks", color, color * 0.85, (rng.uniform(0.2, 0.3), rng.uniform(0.06, 0.1)),
                            0.012, 0.15, 0.1, 6.0, False, seed)  # fmt: skip
        size = rng.uniform(0.1, 0.3)
        return Material("tiles", color, color * 0.95, (size, size), 0.006, 0.04, 0.03, 2.0, False, seed)
    if role == "ceiling":
        color = np.clip(np.full(3, rng.uniform(0.75, 0.95)) + rng.normal(0, 0.02, 3), 0, 1).astype(np.float32)
        if rng.random() < 0.3:  # suspended ceiling panels
            size = rng.uniform(0.5, 1.2)
            return Material("tiles", color, color, (size, size), 0.02, 0.03, 0.03, 1.0, False, seed)
        return Material("plain", color, color, noise_amp=0.03, noise_scale=1.0, seed=seed)
    # furniture
    kind = rng.choice(["planks", "plain", "plain", "tiles"], p=[0.35, 0.25, 0.25, 0.15])
    if kind == "planks":
        color = _jitter_color(rng, _WOOD_COLORS)
        return Material("planks", color, color * 0.85, (rng.uniform(0.5, 1.5), rng.uniform(0.1, 0.3)), 0.003,
                        0.1, 0.08, 3.0, bool(rng.random() < 0.5), seed)  # fmt: skip
    color = _random_color(rng) if rng.random() < 0.5 else _jitter_color(rng, _FABRIC_COLORS + _WALL_COLORS)
    if kind == "tiles":  # panelled doors / drawers
        return Material("tiles", color, color, (rng.uniform(0.3, 0.6), rng.uniform(0.2, 0.5)), 0.015, 0.03,
                        0.05, 2.0, False, seed)  # fmt: skip
    return Material("plain", color, color, noise_amp=rng.uniform(0.03, 0.25), noise_scale=rng.uniform(2, 10),
                    seed=seed)  # fmt: skip


def _box(
    lo: tuple[float, float, float], hi: tuple[float, float, float], material: Material, shadow: bool = True
) -> Box:
    return Box(np.array(lo, dtype=np.float32), np.array(hi, dtype=np.float32), material, shadow)


def _against_wall(
    rng: np.random.Generator, room: np.ndarray, width: float, depth: float
) -> tuple[float, float, float, float]:
    """Footprint (x0, z0, x1, z1) of an object of ``width`` x ``depth`` backed against a random wall."""
    wall = rng.integers(4)
    gap = rng.uniform(0.0, 0.05)
    if wall < 2:  # x walls: width runs along z
        z0 = rng.uniform(0.0, max(room[2] - width, 0.0))
        x0 = gap if wall == 0 else room[0] - gap - depth
        return x0, z0, x0 + depth, z0 + min(width, room[2])
    x0 = rng.uniform(0.0, max(room[0] - width, 0.0))
    z0 = gap if wall == 2 else room[2] - gap - depth
    return x0, z0, x0 + min(width, room[0]), z0 + depth


def _furniture(rng: np.random.Generator, room: np.ndarray, camera: np.ndarray) -> list[Box]:
    boxes: list[Box] = []
    for _ in range(int(rng.integers(3, 11))):
        kind = rng.choice(["cabinet", "table", "sofa", "cube", "shelf"], p=[0.3, 0.25, 0.15, 0.15, 0.15])
        material = _material(rng, "furniture")
        parts: list[Box] = []
        if kind in ("cabinet", "shelf"):
            width = rng.uniform(0.4, 2.0)
            depth = rng.uniform(0.3, 0.6) if kind == "cabinet" else rng.uniform(0.25, 0.4)
            height = rng.uniform(0.5, 1.2) if kind == "cabinet" else rng.uniform(1.4, min(2.3, room[1] - 0.1))
            x0, z0, x1, z1 = _against_wall(rng, room, width, depth)
            parts.append(_box((x0, 0.0, z0), (x1, height, z1), material))
        elif kind == "sofa":
            width, depth = rng.uniform(1.3, 2.2), rng.uniform(0.8, 1.9)
            x0, z0, x1, z1 = _against_wall(rng, room, width, depth)
            seat = rng.uniform(0.35, 0.55)
            parts.append(_box((x0, 0.0, z0), (x1, seat, z1), material))
            if rng.random() < 0.7:  # a backrest along the longer side facing the wall
                back = rng.uniform(0.75, 1.0)
                if x1 - x0 > z1 - z0:
                    zb = z0 if z0 < room[2] / 2 else z1 - 0.2
                    parts.append(_box((x0, 0.0, zb), (x1, back, zb + 0.2), material))
                else:
                    xb = x0 if x0 < room[0] / 2 else x1 - 0.2
                    parts.append(_box((xb, 0.0, z0), (xb + 0.2, back, z1), material))
        elif kind == "table":
            sx, sz = rng.uniform(0.6, 1.8), rng.uniform(0.5, 1.0)
            if rng.random() < 0.5:
                sx, sz = sz, sx
            x0, z0 = (
                rng.uniform(0.1, max(room[0] - sx - 0.1, 0.2)),
                rng.uniform(0.1, max(room[2] - sz - 0.1, 0.2)),
            )
            x1, z1 = x0 + sx, z0 + sz
            top, thick, leg = rng.uniform(0.45, 0.8), rng.uniform(0.03, 0.06), rng.uniform(0.04, 0.08)
            parts.append(_box((x0, top - thick, z0), (x1, top, z1), material))
            for lx, lz in ((x0, z0), (x1 - leg, z0), (x0, z1 - leg), (x1 - leg, z1 - leg)):
                parts.append(_box((lx, 0.0, lz), (lx + leg, top - thick, lz + leg), material, shadow=False))
            if rng.random() < 0.6:  # something standing on the table
                size = rng.uniform(0.1, 0.35, 3)
                ox, oz = rng.uniform(x0, max(x1 - size[0], x0)), rng.uniform(z0, max(z1 - size[2], z0))
                parts.append(
                    _box((ox, top, oz), (ox + size[0], top + size[1], oz + size[2]), _material(rng, "obj"))
                )
        else:  # cube: boxes, bins, ottomans
            size = rng.uniform(0.2, 0.7, 3)
            x0, z0 = rng.uniform(0.0, room[0] - size[0]), rng.uniform(0.0, room[2] - size[2])
            parts.append(_box((x0, 0.0, z0), (x0 + size[0], size[1], z0 + size[2]), material))
        # Keep the camera out of (and not right against) any object.
        clear = all(
            not (p.lo[0] - 0.35 < camera[0] < p.hi[0] + 0.35 and p.lo[2] - 0.35 < camera[2] < p.hi[2] + 0.35)
            for p in parts
        )
        if clear:
            boxes.extend(parts)
    return boxes


def _decals(rng: np.random.Generator, room: np.ndarray) -> list[Decal]:
    decals: list[Decal] = []
    for face in WALL_FACES:
        wall_length = room[2] if face < 2 else room[0]
        for _ in range(int(rng.integers(0, 3))):
            kind = rng.choice(["picture", "door", "window"], p=[0.55, 0.25, 0.2])
            if kind == "door":
                width, t0, t1 = rng.uniform(0.8, 1.0), 0.0, rng.uniform(2.0, 2.2)
            elif kind == "window":
                width, t0 = rng.uniform(0.6, 1.6), rng.uniform(0.8, 1.1)
                t1 = min(t0 + rng.uniform(0.8, 1.4), room[1] - 0.2)
            else:
                width, t0 = rng.uniform(0.3, 1.2), rng.uniform(1.1, 1.6)
                t1 = min(t0 + rng.uniform(0.25, 0.9), room[1] - 0.2)
            s0 = rng.uniform(0.1, max(wall_length - width - 0.1, 0.2))
            frame = Material("plain", _jitter_color(rng, _WOOD_COLORS + _WALL_COLORS), np.zeros(3, np.float32),
                             noise_amp=0.05, seed=int(rng.integers(2**31 - 1)))  # fmt: skip
            border = rng.uniform(0.03, 0.08)
            decals.append(Decal(face, (s0, t0, s0 + width, t1), frame))
            if kind == "door":
                inner = _material(rng, "furniture")
                decals.append(Decal(face, (s0 + border, t0, s0 + width - border, t1 - border), inner))
            elif kind == "window":
                sky = np.clip(np.array([0.75, 0.85, 1.0]) * rng.uniform(0.8, 1.0), 0, 1).astype(np.float32)
                glass = Material(
                    "plain", sky, sky, noise_amp=0.1, noise_scale=1.0, seed=int(rng.integers(2**31 - 1))
                )
                decals.append(Decal(face, (s0 + border, t0 + border, s0 + width - border, t1 - border), glass,
                                    emission=float(rng.uniform(0.3, 1.5))))  # fmt: skip
            else:
                art = Material("plain", _random_color(rng), _random_color(rng), noise_amp=rng.uniform(0.2, 0.8),
                               noise_scale=rng.uniform(2, 8), seed=int(rng.integers(2**31 - 1)))  # fmt: skip
                decals.append(Decal(face, (s0 + border, t0 + border, s0 + width - border, t1 - border), art))
    if rng.random() < 0.4:  # a rug: texture change on the floor without a depth change
        sx, sz = rng.uniform(1.0, min(3.0, room[0] - 0.2)), rng.uniform(1.0, min(3.5, room[2] - 0.2))
        x0, z0 = rng.uniform(0.1, room[0] - sx - 0.1), rng.uniform(0.1, room[2] - sz - 0.1)
        rug = _material(rng, "floor") if rng.random() < 0.3 else Material(
            "stripes", _random_color(rng), _random_color(rng), (rng.uniform(0.1, 0.5), 1.0), noise_amp=0.15,
            noise_scale=6.0, swap=bool(rng.random() < 0.5), seed=int(rng.integers(2**31 - 1)))  # fmt: skip
        decals.append(Decal(FLOOR, (x0, z0, x0 + sx, z0 + sz), rug))
    return decals


def _ceiling_lamps(lights: list[Light], room: np.ndarray) -> list[Decal]:
    """A glowing disc-like square on the ceiling above lights that hang close to it."""
    decals = []
    white = np.ones(3, dtype=np.float32)
    for lamp in lights:
        if room[1] - lamp.position[1] < 0.3:
            half = 0.15 + 0.1 * (lamp.power / 8.0)
            x, z = float(lamp.position[0]), float(lamp.position[2])
            glow = Material("plain", white * 0.9, white, noise_amp=0.0, seed=0)
            decals.append(
                Decal(CEILING, (x - half, z - half, x + half, z + half), glow, emission=2.0 * lamp.power)
            )
    return decals


def random_scene(rng: np.random.Generator) -> Scene:
    """Sample a random room, camera, furniture, decorations and lights."""
    room = np.array([rng.uniform(2.5, 6.0), rng.uniform(2.4, 3.0), rng.uniform(2.8, 7.5)], dtype=np.float32)
    camera = np.array(
        [rng.uniform(0.35, room[0] - 0.35), rng.uniform(1.1, 1.8), rng.uniform(0.3, 0.6 * room[2])],
        dtype=np.float32,
    )
    to_centre = math.atan2(room[0] / 2 - camera[0], room[2] / 2 - camera[2] + 1e-6)
    yaw = to_centre + rng.normal(0.0, math.radians(30))
    pitch = math.radians(rng.uniform(-30.0, 8.0))
    roll = math.radians(rng.normal(0.0, 2.0))
    floor, ceiling = _material(rng, "floor"), _material(rng, "ceiling")
    wall = _material(rng, "wall")
    faces = [wall, wall, floor, ceiling, wall, wall]
    if rng.random() < 0.35:  # an accent wall
        faces[int(rng.choice(WALL_FACES))] = _material(rng, "wall")
    lights = []
    for _ in range(int(rng.choice([1, 1, 2]))):
        position = np.array(
            [
                rng.uniform(0.2, room[0] - 0.2),
                room[1] - rng.uniform(0.1, 0.6),
                rng.uniform(0.2, room[2] - 0.2),
            ],
            dtype=np.float32,
        )
        tint = np.clip(1 + rng.normal(0, 0.08, 3), 0.7, 1.2).astype(np.float32)
        lights.append(Light(position, tint, float(rng.uniform(2.0, 8.0))))
    return Scene(
        room=room,
        camera=camera,
        yaw=float(yaw),
        pitch=float(pitch),
        roll=float(roll),
        faces=faces,
        boxes=_furniture(rng, room, camera),
        decals=_decals(rng, room) + _ceiling_lamps(lights, room),
        lights=lights,
        ambient=float(rng.uniform(0.05, 0.35)),
        exposure=float(rng.uniform(0.65, 0.95)),
        gamma=float(rng.uniform(1.9, 2.4)),
        noise_std=float(rng.uniform(0.003, 0.02)),
        vignette=float(rng.uniform(0.0, 0.35)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of scene ``index`` of ``split`` (independent of any other scene)."""
    if split not in SPLIT_CODES:
        raise ValueError(f"split must be one of {sorted(SPLIT_CODES)}, got {split!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_CODES[split], int(index)]))


def make_scene(seed: int, split: str, index: int) -> Scene:
    return random_scene(scene_rng(seed, split, index))


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
        self.intrinsics = Intrinsics.nyu_like(self.height, self.width)
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
