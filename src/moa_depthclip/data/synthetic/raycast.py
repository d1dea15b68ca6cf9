"""Ray casting a :class:`Scene` through a pinhole camera: primary hits (z-depth), albedo, shadowed
point lights with ambient occlusion, and the camera response (exposure, vignetting, noise, gamma)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from moa_depthclip.data.cameras import Intrinsics
from moa_depthclip.data.synthetic.scene import FLOOR, Box, Scene, camera_to_world
from moa_depthclip.data.synthetic.textures import shade_material


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
    k = intrinsics or Intrinsics.nyu(height, width)
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
