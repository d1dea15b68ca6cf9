"""`moa-depthclip predict`: files, folders, globs, bad files, and a summary that matches the disk."""

from __future__ import annotations

import re

import numpy as np
import pytest
from inference_helpers import tiny_depth_model
from PIL import Image

from moa_depthclip.cli.main import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    tiny_depth_model().save_pretrained(folder)
    return folder


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)).save(folder / "room.jpg")
    Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(folder / "sub" / "gray.png")
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / "sub" / "room.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


def _reported_total(text: str) -> int:
    return int(re.search(r"total\s+(\d+) file", text).group(1))


def test_folder_with_bad_and_non_image_files(saved, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["predict", str(inputs), "-r", "--model", str(saved), "--out", str(out), "--long-side", "64"]
        + ["--formats", "png16,npy,color,side,ply"]
    )
    captured = capsys.readouterr()
    assert code == 1  # broken.png failed, the others were still processed
    assert "broken.png" in captured.err and "notes.txt" in captured.err
    assert "started from RANDOM weights" in captured.err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert _reported_total(captured.out) == len(written) == 3 * 5
    assert "room_depth.png" in written and "sub/room_depth.png" in written and "sub/gray.ply" in written

    millimetres = np.asarray(Image.open(out / "room_depth.png"))
    metres = np.load(out / "room_depth.npy")
    assert millimetres.dtype == np.uint16 and millimetres.shape == metres.shape == (60, 90)
    np.testing.assert_allclose(millimetres / 1000.0, np.minimum(metres, 65.535), atol=6e-4)
    header = (out / "room.ply").read_bytes()[:400].decode("ascii", errors="ignore")
    assert "binary_little_endian" in header and "element vertex 5400" in header


def test_glob_and_formats(saved, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["predict", str(inputs / "*.jpg"), "--model", str(saved), "--out", str(out), "--formats", "npy,color"]
        + ["--input-size", "64x96", "--flip"]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["room_depth.npy", "room_depth_color.png"]
    assert _reported_total(captured.out) == 2


def test_unknown_model_is_a_clear_error(inputs, tmp_path, capsys):
    code = main(["predict", str(inputs / "room.jpg"), "--model", "no-such-model", "--out", str(tmp_path)])
    assert code == 2 and "unknown model" in capsys.readouterr().err
