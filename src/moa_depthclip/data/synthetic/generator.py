"""Random scenes: room size, camera pose, materials, furniture, decorations and lights, each scene
drawn from its own random stream so that scene ``i`` of a split depends on nothing else."""

from __future__ import annotations

import math

import numpy as np

from moa_depthclip.data.synthetic.scene import (
    CEILING,
    FLOOR,
    SPLIT_CODES,
    WALL_FACES,
    Box,
    Decal,
    Light,
    Material,
    Scene,
)

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
