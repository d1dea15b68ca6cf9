"""Robust readers: every image mode, and a DataError naming the file for every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moa_depthclip.data.io import check_same_size, load_depth, load_depth_png, load_rgb, save_depth_png
from moa_depthclip.errors import DataError


def _rgb(h: int = 4, w: int = 6) -> np.ndarray:
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[..., 0] = np.arange(w, dtype=np.uint8)[None] * 40
    image[..., 1] = np.arange(h, dtype=np.uint8)[:, None] * 60
    image[..., 2] = 7
    return image


def test_rgb_roundtrip_png(tmp_path: Path) -> None:
    Image.fromarray(_rgb()).save(tmp_path / "a.png")
    out = load_rgb(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (4, 6, 3)
    np.testing.assert_array_equal(out, _rgb())


def test_grayscale_and_palette_become_rgb(tmp_path: Path) -> None:
    gray = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = load_rgb(tmp_path / "g.png")
    assert out.shape == (4, 6, 3) and (out[..., 0] == gray).all() and (out[..., 2] == gray).all()
    Image.fromarray(_rgb()).convert("P").save(tmp_path / "p.png")
    assert load_rgb(tmp_path / "p.png").shape == (4, 6, 3)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque
    rgba[0, 1] = (0, 0, 0, 0)  # transparent -> white
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = load_rgb(tmp_path / "a.png")
    assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[0, 1]) == (255, 255, 255)


def test_sixteen_bit_gray_scaled_not_truncated(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    out = load_rgb(tmp_path / "g16.png")
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.fromarray(_rgb()).convert("CMYK").save(tmp_path / "c.jpg")
    out = load_rgb(tmp_path / "c.jpg")
    assert out.shape == (4, 6, 3)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    image = Image.fromarray(_rgb(4, 6))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "r.jpg", exif=exif, quality=100)
    assert load_rgb(tmp_path / "r.jpg").shape == (6, 4, 3)


def test_image_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found.*missing.png"):
        load_rgb(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    with pytest.raises(DataError, match="junk.png"):
        load_rgb(tmp_path / "junk.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        tmp_path / "t.png"
    )
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="trunc.png"):
        load_rgb(tmp_path / "trunc.png")


def test_depth_png_roundtrip_and_scale(tmp_path: Path) -> None:
    depth = np.array([[0.0, 1.234], [2.5, 9.999]], dtype=np.float32)
    save_depth_png(tmp_path / "d.png", depth, scale=1000.0)
    with Image.open(tmp_path / "d.png") as check:
        assert check.mode.startswith("I;16")
    out = load_depth_png(tmp_path / "d.png", scale=1000.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, depth, atol=5e-4)
    kitti = load_depth_png(tmp_path / "d.png", scale=256.0)
    assert kitti[0, 1] == pytest.approx(1234 / 256)


def test_depth_png_rejects_8bit_and_rgb(tmp_path: Path) -> None:
    Image.fromarray(np.full((3, 3), 9, dtype=np.uint8)).save(tmp_path / "d8.png")
    with pytest.raises(DataError, match="8-bit.*d8.png"):
        load_depth_png(tmp_path / "d8.png", 1000.0)
    Image.fromarray(_rgb()).save(tmp_path / "drgb.png")
    with pytest.raises(DataError, match="3 channels.*drgb.png"):
        load_depth_png(tmp_path / "drgb.png", 1000.0)


def test_all_invalid_depth_raises_unless_allowed(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((3, 3), dtype=np.uint16)).save(tmp_path / "zero.png")
    with pytest.raises(DataError, match="no valid pixel.*zero.png"):
        load_depth_png(tmp_path / "zero.png", 1000.0)
    assert load_depth_png(tmp_path / "zero.png", 1000.0, allow_empty=True).max() == 0


def test_npy_depth_nan_inf_masked(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.array([[1.0, np.nan], [np.inf, -2.0]], dtype=np.float32))
    out = load_depth(tmp_path / "d.npy")
    assert out.tolist() == [[1.0, 0.0], [0.0, 0.0]]
    np.save(tmp_path / "bad.npy", np.array([[np.nan]], dtype=np.float32))
    with pytest.raises(DataError, match="bad.npy"):
        load_depth(tmp_path / "bad.npy")


def test_size_mismatch_names_both_files() -> None:
    with pytest.raises(DataError, match="img.jpg") as info:
        check_same_size(np.zeros((4, 6, 3)), np.zeros((4, 5)), "img.jpg", "dep.png")
    assert "dep.png" in str(info.value)
