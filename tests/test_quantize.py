"""The faster runtimes: int8 dynamic quantisation (torch.ao, ONNX Runtime) and `predict --backend`
choosing them (accuracy, never timings)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from inference_helpers import tiny_depth_model
from PIL import Image
from torch import nn

from moa_depthclip.cli.main import main
from moa_depthclip.inference.export_onnx import OnnxDepthModel
from moa_depthclip.inference.quantize import (
    BACKENDS,
    BackendError,
    build_onnx,
    load_backend,
    quantize_torch,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = tiny_depth_model().eval()
    with torch.no_grad():  # zero-initialised adapters would make int8 and float32 trivially agree
        for parameter in model.parameters():
            if not parameter.abs().sum():
                parameter.normal_(0, 0.05)
    return model


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))


def test_torch_int8_quantises_every_linear_and_stays_close(model, images):
    quantized = quantize_torch(model)
    assert not any(type(m) is nn.Linear for m in quantized.modules())  # all replaced by int8 ones
    assert any(type(m) is nn.Linear for m in model.modules())  # the original is untouched
    with torch.no_grad():
        reference, result = model(images).depth, quantized(images).depth
    assert result.shape == reference.shape
    error = (result - reference).abs()
    assert 0 < error.max() < 0.1 * reference.abs().max()  # changed numerics, same depth map


def test_onnx_int8_graph_runs_any_size_and_stays_close(model, images, tmp_path):
    graph = build_onnx(model, "onnx-int8", tmp_path / "int8.onnx")
    runtime = OnnxDepthModel(graph)
    assert runtime.is_random_init == model.is_random_init  # exporter metadata survives quantisation
    for batch in (images, images[:1, :, :64, :64]):
        with torch.no_grad():
            reference = model(batch).depth
        result = runtime(batch).depth
        assert result.shape == reference.shape
        assert (result - reference).abs().max() < 0.1 * reference.abs().max()


def test_backend_errors_are_one_line(tmp_path):
    with pytest.raises(BackendError, match="unknown backend"):
        load_backend("constant:2.0", "tensorrt")
    with pytest.raises(BackendError, match="CPU only"):
        load_backend("constant:2.0", "torch-int8", device="cuda")
    with pytest.raises(BackendError, match="needs a PyTorch model"):
        load_backend(str(tmp_path / "model.onnx"), "torch-int8")


def test_predict_backend_torch_int8_writes_depth(model, tmp_path, capsys):
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    image = tmp_path / "room.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "out"
    code = main(["predict", str(image), "--model", str(folder), "--out", str(out), "--backend", "torch-int8"])
    assert code == 0
    depth = np.load(out / "room_depth.npy")
    assert depth.shape == (64, 96) and np.isfinite(depth).all()
    assert "torch-int8" in BACKENDS
