"""The scripts in examples/ run end to end at a tiny size (tiny models, synthetic data in tmp)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from test_data_nyu import write_labeled_mat
from tiny_clip import tiny_clip_config, tiny_model_config

from moa_depthclip.baselines.depthclip import DepthCLIP
from moa_depthclip.model.moa_depthclip import MoADepthCLIP

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def moa_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("examples") / "moa"
    MoADepthCLIP.from_clip(tiny_model_config()).save_pretrained(folder)
    return folder


def _photo(path: Path, seed: int, size: tuple[int, int] = (64, 96)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(path)
    return path


def test_depth_for_folder(moa_dir: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "a.png", 0)
    _photo(photos / "b.jpg", 1)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    status = example("depth_for_folder").main([str(photos), str(tmp_path / "out"), "--model", str(moa_dir)])
    assert status == 1  # one photo could not be read
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(
        f"{n}{s}" for n in "ab" for s in ("_depth.png", "_depth.npy", "_depth_color.png")
    )
    assert np.load(tmp_path / "out" / "a_depth.npy").shape == (64, 96)


def test_depthclip_vs_moadepthclip_on_nyu(moa_dir: Path, tmp_path: Path) -> None:
    mat = write_labeled_mat(tmp_path / "nyu.mat", 3, height=96, width=128)
    splits = tmp_path / "splits.mat"
    scipy.io.savemat(splits, {"trainNdxs": np.array([[1]]), "testNdxs": np.array([[2], [3]])})
    depthclip_dir = tmp_path / "depthclip"
    DepthCLIP.from_vit("random", clip_config=tiny_clip_config().to_dict()).save_pretrained(depthclip_dir)
    rows = example("depthclip_vs_moadepthclip_nyu").main(
        ["--mat", str(mat), "--splits", str(splits), "--depthclip", str(depthclip_dir), "--moa", str(moa_dir)]
    )
    assert [(name, protocol) for name, protocol, _ in rows] == [
        ("DepthCLIP", "nyu-depthclip"),
        ("DepthCLIP", "nyu"),
        ("MoA-DepthCLIP", "nyu"),
    ]
    assert all(math.isfinite(mean["abs_rel"]) and 0 <= mean["delta1"] <= 1 for _, _, mean in rows)


def test_finetune_on_folder(moa_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "pairs"
    (data / "image").mkdir(parents=True)
    (data / "depth").mkdir()
    for index in range(4):
        _photo(data / "image" / f"s{index}.png", index, size=(64, 64))
        depth = np.linspace(1.0, 4.0, 64 * 64, dtype=np.float32).reshape(64, 64) + index * 0.1
        np.save(data / "depth" / f"s{index}.npy", depth)
    best = example("finetune_on_folder").main(
        [
            str(data),
            "--from",
            str(moa_dir),
            "--out",
            str(tmp_path / "run"),
            "--steps",
            "2",
            "--batch-size",
            "2",
        ]
    )
    model = MoADepthCLIP.from_pretrained(best)
    assert model.predict(np.zeros((64, 64, 3), np.uint8)).shape == (64, 64)
    card = (best.parent / "final" / "README.md").read_text()  # the trainer tells the card what it did
    assert "- **Data**: folder" in card and "- **Optimizer steps**: 2" in card
    assert "on the validation split, during training" in card and "| this checkpoint |" in card
