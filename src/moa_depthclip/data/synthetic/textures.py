"""Procedural surface textures defined in metres on the surface (tiles, planks, bricks, stripes,
noise), anti-aliased by the pixel footprint so their projected size carries the texture-gradient cue."""

from __future__ import annotations

import numpy as np

from moa_depthclip.data.synthetic.scene import Material

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
