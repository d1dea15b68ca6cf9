"""The web app's handlers on good and bad uploads (plain functions, no browser)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_clip import tiny_model_config

from moa_depthclip.app.handlers import MAX_PIXELS, ModelCache, estimate, model_entries, stack_panels
from moa_depthclip.model.moa_depthclip import MoADepthCLIP


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("app") / "model"
    MoADepthCLIP.from_clip(tiny_model_config()).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def cache() -> ModelCache:
    return ModelCache()


@pytest.fixture
def photos(tmp_path: Path) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for index, size in enumerate([(48, 64), (70, 40)]):
        path = tmp_path / f"photo{index}.png"
        Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_models_are_labelled_and_random_is_always_offered(model_dir: str) -> None:
    entries = model_entries([model_dir, "depthclip-vit:weights/clip", "random"])
    assert [e.spec for e in entries] == [model_dir, "depthclip-vit:weights/clip", "random"]
    assert "saved model" in entries[0].label and "DepthCLIP zero-shot" in entries[1].label
    assert "RANDOM weights" in entries[2].label and "meaningless" in entries[2].label


def test_good_uploads_give_panels_slider_and_downloads(
    model_dir: str, cache: ModelCache, photos: list[str], tmp_path: Path
) -> None:
    result = estimate(photos, cache, model_dir, out_root=tmp_path)
    assert result.message.startswith("Processed 2 of 2 image(s)")
    assert "RANDOM weights" in result.message  # the tiny model's backbone is random: said on the page
    assert len(result.panels) == 2 and all(panel.ndim == 3 for panel, _ in result.panels)
    image, coloured = result.slider
    assert image.shape == coloured.shape == (48, 64, 3)
    names = sorted(Path(f).name for f in result.files)
    assert names == sorted(
        f"{i:02d}_photo{i}{s}" for i in (0, 1) for s in ("_depth.png", "_depth.npy", ".ply")
    )
    png = next(f for f in result.files if f.endswith("photo0_depth.png"))
    npy = next(f for f in result.files if f.endswith("photo0_depth.npy"))
    millimetres = np.asarray(Image.open(png))
    metres = np.load(npy)
    assert millimetres.dtype == np.uint16 and metres.shape == (48, 64)
    np.testing.assert_array_equal(millimetres, np.round(metres * 1000).astype(np.uint16))
    assert Path(next(f for f in result.files if f.endswith(".ply"))).read_bytes().startswith(b"ply\n")


def test_comparison_doubles_the_panels(
    model_dir: str, cache: ModelCache, photos: list[str], tmp_path: Path
) -> None:
    result = estimate(photos[:1], cache, model_dir, compare_spec="constant:2.0", out_root=tmp_path)
    assert len(result.panels) == 2 and "compared with constant depth 2.0 m" in result.message
    assert "constant depth" in result.panels[1][1]
    sheet = stack_panels(result.panels)
    assert sheet.shape[0] > result.panels[0][0].shape[0] + result.panels[1][0].shape[0]
    assert stack_panels([]) is None


def test_bad_uploads_are_messages_not_crashes(
    model_dir: str, cache: ModelCache, photos: list[str], tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    truncated = tmp_path / "cut.jpg"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(truncated, quality=90)
    truncated.write_bytes(truncated.read_bytes()[:200])
    huge = tmp_path / "huge.png"
    side = int(np.sqrt(MAX_PIXELS)) + 100
    Image.new("L", (side, side)).save(huge)  # decodes only its header: refused before decoding
    result = estimate([str(text), str(truncated), str(huge), photos[0]], cache, model_dir, out_root=tmp_path)
    assert result.message.startswith("Processed 1 of 4 image(s)")
    assert "skipped notes.txt: not an image file" in result.message
    assert "skipped cut.jpg" in result.message
    assert f"skipped huge.png: {side}x{side}" in result.message and "megapixels" in result.message
    assert len(result.panels) == 1 and len(result.files) == 3


def test_nothing_uploaded_and_unloadable_model(cache: ModelCache, photos: list[str], tmp_path: Path) -> None:
    assert "Upload one or more images" in estimate([], cache, "random").message
    result = estimate(photos, cache, str(tmp_path / "missing-folder"), out_root=tmp_path)
    assert result.message.startswith("**Could not load the model:**") and not result.panels
    assert "unknown colour map" in estimate(photos, cache, "constant:1", cmap="nope").message


@pytest.mark.skipif(importlib.util.find_spec("gradio") is None, reason="gradio not installed (extra [app])")
def test_page_builds(model_dir: str) -> None:
    from moa_depthclip.app.ui import build_app

    page = build_app([model_dir])
    assert type(page).__name__ == "Blocks"
