"""transformers' depth pipeline on saved folders equals model.predict (MoA-DepthCLIP and DepthCLIP)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_clip import tiny_clip_config, tiny_model_config

import moa_depthclip  # noqa: F401  (registers with transformers)
from moa_depthclip.baselines.depthclip import DepthCLIP, DepthCLIPConfig
from moa_depthclip.model.moa_depthclip import MoADepthCLIP


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 50x70 RGB photo stored with EXIF orientation 6 (upright it is 70x50)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("photos") / "rotated.jpg"
    picture = Image.fromarray((rng.random((50, 70, 3)) * 255).astype(np.uint8))
    exif = picture.getexif()
    exif[0x0112] = 6
    picture.save(path, exif=exif, quality=95)
    return path


@pytest.fixture(scope="module")
def moa_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = MoADepthCLIP.from_clip(tiny_model_config())
    with torch.no_grad():  # a non-trivial decoder, so the depth map is not flat
        for parameter in model.head.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    folder = tmp_path_factory.mktemp("moa") / "model"
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def depthclip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = DepthCLIP.from_vit("random", DepthCLIPConfig(flip=True), clip_config=tiny_clip_config().to_dict())
    folder = tmp_path_factory.mktemp("depthclip") / "model"
    model.save_pretrained(folder)
    return folder


def test_saved_folders_carry_model_type_and_preprocessor(moa_folder: Path, depthclip_folder: Path) -> None:
    assert json.loads((moa_folder / "config.json").read_text())["model_type"] == "moa_depthclip"
    assert json.loads((depthclip_folder / "config.json").read_text())["model_type"] == "depthclip"
    for folder in (moa_folder, depthclip_folder):
        processor = json.loads((folder / "preprocessor_config.json").read_text())
        assert (
            processor["image_processor_type"] == "DepthModelImageProcessor" and processor["long_side"] == 640
        )
    # the package's own loader still reads the folder (model_type is checked, not kept in the config)
    assert not hasattr(MoADepthCLIP.from_pretrained(moa_folder).config, "model_type")


@pytest.mark.parametrize("kind", ["moa", "depthclip"])
def test_pipeline_equals_predict(kind: str, moa_folder: Path, depthclip_folder: Path, photo: Path) -> None:
    from transformers import pipeline

    folder = moa_folder if kind == "moa" else depthclip_folder
    model = MoADepthCLIP.from_pretrained(folder) if kind == "moa" else DepthCLIP.from_pretrained(folder)
    estimator = pipeline("depth-estimation", model=str(folder))
    assert (
        type(estimator.model).__name__
        == ("MoADepthCLIP" if kind == "moa" else "DepthCLIP") + "ForDepthEstimation"
    )

    result = estimator(str(photo))
    expected = model.predict(photo)
    depth = result["predicted_depth"]
    assert (
        isinstance(depth, torch.Tensor) and tuple(depth.shape) == (70, 50) == expected.shape
    )  # upright size
    np.testing.assert_allclose(depth.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert float(depth.std()) > 0  # the comparison is not between two flat maps
    assert isinstance(result["depth"], Image.Image) and result["depth"].size == (50, 70)

    pil = Image.open(photo)
    np.testing.assert_allclose(
        estimator(pil)["predicted_depth"].numpy(), model.predict(pil), rtol=1e-5, atol=1e-6
    )
    batch = estimator([str(photo), str(photo)])
    assert isinstance(batch, list) and len(batch) == 2


def test_import_hook_registers_when_transformers_comes_later(moa_folder: Path) -> None:
    """``import moa_depthclip`` first, transformers afterwards (a fresh interpreter)."""
    code = (
        "import sys, moa_depthclip; assert 'transformers' not in sys.modules; "
        "from transformers import AutoConfig, AutoImageProcessor; "
        f"c = AutoConfig.from_pretrained({str(moa_folder)!r}); "
        f"p = AutoImageProcessor.from_pretrained({str(moa_folder)!r}); "
        "print(type(c).__name__, type(p).__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["MoADepthCLIPTransformersConfig", "DepthModelImageProcessor"]
