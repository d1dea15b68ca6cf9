"""Saved models, model specs and the prediction API on every kind of input people have."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_helpers import tiny_depth_model
from PIL import Image

from moa_depthclip.errors import CheckpointError, DataError, UserFacingError, WeightsNotFoundError
from moa_depthclip.inference.loading import find_saved_model, load_depth_model
from moa_depthclip.inference.predict import predict_depth, working_size
from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.visualize import colorbar, colorize, colormap, make_panel, nice_ticks


@pytest.fixture(scope="module")
def model() -> MoADepthCLIP:
    return tiny_depth_model()


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    model.save_pretrained(folder)
    return folder


def test_round_trip_gives_identical_outputs(model, saved):
    loaded = MoADepthCLIP.from_pretrained(saved)
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model(images).depth, loaded(images).depth)
    assert loaded.config.to_json() == model.config.to_json()
    assert not loaded.training


def test_load_depth_model_folder_and_run_directory(model, saved, tmp_path):
    run = tmp_path / "run"
    MoADepthCLIP.from_pretrained(saved).save_pretrained(run / "best")
    assert find_saved_model(run) == run / "best"
    images = torch.rand(1, 3, 64, 64)
    for spec in (str(saved), str(run)):
        loaded = load_depth_model(spec)
        with torch.no_grad():
            assert torch.equal(loaded(images).depth, model(images).depth)
        assert loaded.is_random_init


def test_unreachable_hub_id_and_bad_specs_raise_clear_errors(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="nobody/no-such-model"):
        MoADepthCLIP.from_pretrained("nobody/no-such-model", local_files_only=True)
    with pytest.raises(WeightsNotFoundError):
        load_depth_model(str(tmp_path / "missing"))
    with pytest.raises(WeightsNotFoundError):
        load_depth_model(str(tmp_path))  # a folder without a saved model
    with pytest.raises(UserFacingError, match="unknown model"):
        load_depth_model("not-a-model")
    with pytest.raises(UserFacingError):
        load_depth_model("constant:-1")


def test_mismatched_weights_are_a_checkpoint_error(saved, tmp_path):
    import json
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(saved, broken)
    config = json.loads((broken / "config.json").read_text())
    config["decoder"]["fusion_channels"] = 24
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError):
        MoADepthCLIP.from_pretrained(broken)


def test_constant_spec():
    model = load_depth_model("constant:2.5")
    np.testing.assert_allclose(predict_depth(model, np.zeros((33, 47, 3), np.uint8)), 2.5)


def test_working_size_keeps_aspect_and_multiples_of_32():
    assert working_size(480, 640) == (480, 640)
    assert working_size(3000, 4000, long_side=640) == (480, 640)
    assert working_size(4000, 3000, long_side=320) == (320, 256)
    assert working_size(100, 100, input_size=(64, 96)) == (64, 96)


def _check(depth: np.ndarray, shape: tuple[int, int]) -> None:
    assert isinstance(depth, np.ndarray) and depth.dtype == np.float32 and depth.shape == shape
    assert np.isfinite(depth).all() and (depth > 0).all()


def test_predict_array_kinds(model):
    rng = np.random.default_rng(0)
    uint8 = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    kinds = {
        "uint8": uint8,
        "float": uint8.astype(np.float32) / 255,
        "gray": uint8[:, :, 0],
        "rgba": np.concatenate([uint8, np.full((70, 90, 1), 255, np.uint8)], axis=2),
        "uint16": uint8.astype(np.uint16) * 257,
        "pil": Image.fromarray(uint8),
        "tensor": torch.from_numpy(uint8).permute(2, 0, 1).float() / 255,
    }
    reference = model.predict(uint8, long_side=96)
    for name, image in kinds.items():
        depth = model.predict(image, long_side=96)
        _check(depth, (70, 90))
        if name in ("rgba", "uint16", "pil"):  # same pixels, same (PIL) resizing
            np.testing.assert_allclose(depth, reference, rtol=1e-4, atol=1e-4, err_msg=name)
        elif name in ("float", "tensor"):  # float images are resized by torch: tiny differences
            np.testing.assert_allclose(depth, reference, rtol=1e-2, err_msg=name)


def test_predict_list_is_batched_in_order_with_flip(model):
    rng = np.random.default_rng(1)
    images = [
        rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(64, 64, 3), (40, 100, 3), (64, 64, 3)]
    ]
    depths = predict_depth(model, images, long_side=96, flip=True, batch_size=2)
    assert [d.shape for d in depths] == [(64, 64), (40, 100), (64, 64)]
    single = predict_depth(model, images[1], long_side=96, flip=True)
    np.testing.assert_allclose(depths[1], single, rtol=1e-5, atol=1e-5)


def test_predict_files_exif_gray_rgba_16bit(model, tmp_path):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    rotated = Image.fromarray(pixels)
    exif = rotated.getexif()
    exif[0x0112] = 6  # stored landscape, shown rotated by 90 degrees -> portrait
    rotated.save(tmp_path / "exif.jpg", exif=exif.tobytes())
    Image.fromarray(pixels[:, :, 0]).save(tmp_path / "gray.png")
    Image.fromarray(np.concatenate([pixels, pixels[:, :, :1]], axis=2), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(pixels[:, :, 0].astype(np.uint16) * 257).save(tmp_path / "deep.png")
    _check(model.predict(tmp_path / "exif.jpg", long_side=64), (80, 48))
    for name in ("gray.png", "rgba.png", "deep.png"):
        _check(model.predict(str(tmp_path / name), long_side=64), (48, 80))


def test_large_image_is_downscaled_before_conversion(model, monkeypatch):
    import moa_depthclip.model.prediction as predict_module

    seen = []
    original = predict_module._to_model_tensor

    def spy(rgb, size):
        tensor = original(rgb, size)
        seen.append(tuple(tensor.shape))
        return tensor

    monkeypatch.setattr(predict_module, "_to_model_tensor", spy)
    image = np.zeros((3000, 4000, 3), np.uint8)
    depth = model.predict(image, long_side=128)
    _check(depth, (3000, 4000))
    assert seen == [(3, 96, 128)]


def test_corrupt_file_raises_data_error_naming_it(model, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        model.predict(bad)


def test_visualisation_helpers():
    assert colormap("magma").shape == (256, 3)
    lightness = colormap("magma").astype(float) @ [0.299, 0.587, 0.114]
    assert (np.diff(lightness) > -2).all()  # lightness rises along the map
    depth = np.linspace(0.5, 4.0, 60 * 80, dtype=np.float32).reshape(60, 80)
    depth[0, 0] = 0
    picture = colorize(depth, 0.5, 4.0)
    assert picture.shape == (60, 80, 3) and picture.dtype == np.uint8
    assert nice_ticks(0.5, 4.0) == [1.0, 2.0, 3.0, 4.0]
    assert colorbar(120, 0.5, 4.0).shape[0] == 120
    panel = make_panel(np.zeros((60, 80, 3), np.uint8), depth, depth * 1.1, titles={})
    assert panel.ndim == 3 and panel.shape[1] > 4 * 80
