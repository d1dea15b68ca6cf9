"""Synthetic scenes: exact geometry, determinism, split separation, export, no brightness shortcut."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from moa_depthclip.data.nyu import NYUSync
from moa_depthclip.data.synthetic import (
    Box,
    Intrinsics,
    Light,
    Material,
    Scene,
    SyntheticScenes,
    export_sync_layout,
    render_scene,
)


def _plain(value: float = 0.6) -> Material:
    color = np.full(3, value, dtype=np.float32)
    return Material("plain", color, color, noise_amp=0.0)


def _scene(room: tuple[float, float, float], camera: tuple[float, float, float], **kwargs: object) -> Scene:
    light = Light(np.array([room[0] / 2, room[1] - 0.1, room[2] / 2], dtype=np.float32), np.ones(3), 4.0)
    defaults = dict(yaw=0.0, pitch=0.0, roll=0.0, faces=[_plain()] * 6, lights=[light], noise_std=0.0)
    defaults.update(kwargs)
    return Scene(room=np.array(room, dtype=np.float32), camera=np.array(camera, dtype=np.float32), **defaults)


def test_wall_at_known_distance_is_constant_z_depth() -> None:
    scene = _scene((100.0, 100.0, 2.5), (50.0, 50.0, 0.5))
    depth = render_scene(scene, 48, 64).depth
    np.testing.assert_allclose(depth, 2.0, rtol=1e-5)


def test_floor_depth_matches_analytic_formula() -> None:
    height, width, cam_h = 60, 80, 1.5
    k = Intrinsics.nyu(height, width)
    scene = _scene((400.0, 3.0, 400.0), (200.0, cam_h, 1.0), yaw=math.radians(0.0))
    depth = render_scene(scene, height, width, k).depth
    rows = np.arange(height)
    below = rows - k.cy > 3  # clearly on the floor (the far wall is 399 m away)
    expected = cam_h * k.fy / (rows[below] - k.cy)
    np.testing.assert_allclose(depth[below], np.repeat(expected[:, None], width, axis=1), rtol=1e-4)
    # Ceiling above the horizon: (3 - 1.5) * fy / (cy - v)
    above = k.cy - rows > 3
    np.testing.assert_allclose(depth[above][:, 0], (3.0 - cam_h) * k.fy / (k.cy - rows[above]), rtol=1e-4)


def test_box_in_front_occludes_wall() -> None:
    box = Box(np.array([49.0, 49.0, 1.5], np.float32), np.array([51.0, 51.0, 2.0], np.float32), _plain(0.2))
    scene = _scene((100.0, 100.0, 5.0), (50.0, 50.0, 0.5), boxes=[box])
    rendered = render_scene(scene, 48, 64)
    k = rendered.intrinsics
    assert rendered.depth[round(k.cy), round(k.cx)] == pytest.approx(1.0, rel=1e-5)
    assert rendered.depth[0, 0] == pytest.approx(1.0, rel=1e-5)  # the 2 m wide box covers the view
    far = _scene((100.0, 100.0, 5.0), (50.0, 50.0, 0.5))
    assert render_scene(far, 48, 64).depth.min() == pytest.approx(4.5, rel=1e-5)


def test_pitch_up_sees_ceiling_closer() -> None:
    level = render_scene(_scene((400.0, 3.0, 400.0), (200.0, 1.5, 1.0)), 30, 40).depth
    tilted = render_scene(
        _scene((400.0, 3.0, 400.0), (200.0, 1.5, 1.0), pitch=math.radians(20)), 30, 40
    ).depth
    assert tilted[0, 20] < level[0, 20]  # the top row meets the ceiling sooner when looking up


def test_deterministic_and_order_independent() -> None:
    a = SyntheticScenes(6, 48, 64, seed=3)
    b = SyntheticScenes(6, 48, 64, seed=3)
    later_first = b[4]
    first = a[4]
    torch.testing.assert_close(first["image"], later_first["image"])
    torch.testing.assert_close(first["depth"], later_first["depth"])
    loader = torch.utils.data.DataLoader(a, batch_size=2, num_workers=2)
    via_workers = torch.cat([batch["depth"] for batch in loader])
    torch.testing.assert_close(via_workers[4], first["depth"])
    assert not torch.equal(SyntheticScenes(6, 48, 64, seed=4)[4]["depth"], first["depth"])


def test_splits_never_share_scenes() -> None:
    depths = {
        split: [SyntheticScenes(4, 24, 32, seed=0, split=split)[i]["depth"] for i in range(4)]
        for split in ("train", "val", "test")
    }
    for x in depths["train"]:
        for other in ("val", "test"):
            assert all(not torch.equal(x, y) for y in depths[other])


def test_sample_contract() -> None:
    sample = SyntheticScenes(2, 48, 64, seed=0, split="val")[1]
    assert sample["image"].shape == (3, 48, 64) and sample["image"].dtype == torch.float32
    assert float(sample["image"].min()) >= 0.0 and float(sample["image"].max()) <= 1.0
    assert sample["depth"].shape == (1, 48, 64) and float(sample["depth"].min()) > 0
    assert float(sample["depth"].max()) < 10.0
    assert sample["name"] == "synthetic_val_000001" and sample["focal"] == pytest.approx(518.8579 / 10)


def test_brightness_is_not_a_depth_shortcut() -> None:
    dataset = SyntheticScenes(16, 48, 64, seed=1)
    lum, depth = [], []
    for i in range(len(dataset)):
        sample = dataset[i]
        lum.append(sample["image"].mean(0).flatten())
        depth.append(sample["depth"].flatten())
    r = np.corrcoef(torch.cat(lum).numpy(), torch.cat(depth).numpy())[0, 1]
    assert abs(r) < 0.5
    spans = [float(d.max() - d.min()) for d in depth]
    assert min(spans) > 0.3 and np.std([float(d.mean()) for d in depth]) > 0.3  # varied depth


def test_export_sync_layout_readable(tmp_path: Path) -> None:
    filenames = export_sync_layout(tmp_path, 3, 48, 64, seed=2, split="test")
    dataset = NYUSync(tmp_path, filenames)
    assert len(dataset) == 3
    exported = dataset[1]
    original = SyntheticScenes(3, 48, 64, seed=2, split="test")[1]
    torch.testing.assert_close(exported["depth"], original["depth"], atol=6e-4, rtol=0)
    assert float((exported["image"] - original["image"]).abs().mean()) < 0.03  # JPEG
    assert exported["focal"] == pytest.approx(original["focal"], abs=1e-3)
