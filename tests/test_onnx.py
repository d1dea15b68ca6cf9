"""ONNX export: a checked graph with dynamic batch/height/width that matches PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from inference_helpers import tiny_depth_model

pytest.importorskip("onnxruntime")

from moa_depthclip.cli.main import main  # noqa: E402
from moa_depthclip.inference.export_onnx import OnnxDepthModel, compare_with_torch, export_onnx  # noqa: E402

# Agreement of ONNX Runtime with PyTorch (float32, CPU), relative to the depth.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_depth_model()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", 64, 96)
    return model, OnnxDepthModel(path)


def test_dynamic_graph_matches_pytorch_at_two_sizes_and_batches(exported):
    model, onnx_model = exported
    assert onnx_model.fixed_input_size is None and onnx_model.fixed_batch is None
    report = compare_with_torch(model, onnx_model, [(64, 96), (128, 64)], batch_sizes=(1, 3))
    assert report["max_rel_error"] < TOLERANCE


def test_predict_path_runs_the_onnx_backend(exported):
    model, onnx_model = exported
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    expected = model.predict(image, long_side=96)
    np.testing.assert_allclose(onnx_model.predict(image, long_side=96), expected, rtol=TOLERANCE)
    assert onnx_model.is_random_init  # carried over in the graph's metadata


def test_static_export_reports_its_size(tmp_path):
    model = tiny_depth_model()
    onnx_model = OnnxDepthModel(export_onnx(model, tmp_path / "static.onnx", 64, 64, dynamic=False))
    assert onnx_model.fixed_input_size == (64, 64)
    depth = onnx_model.predict([np.zeros((30, 40, 3), np.uint8)] * 2)
    assert [d.shape for d in depth] == [(30, 40), (30, 40)]


def test_export_command_verifies(tmp_path, capsys):
    folder = tmp_path / "saved"
    tiny_depth_model().save_pretrained(folder)
    out = tmp_path / "model.onnx"
    code = main(["export", "--onnx", str(out), "--model", str(folder), "--input-size", "64x64"])
    assert code == 0 and out.is_file()
    assert "max_rel_error" in capsys.readouterr().out


def test_evaluate_scores_an_exported_graph_like_its_pytorch_model(exported, tmp_path):
    """An .onnx file is a model spec: evaluation goes through the same prediction path and agrees."""
    import json

    model, onnx_model = exported
    folder = tmp_path / "saved"
    model.save_pretrained(folder)
    graph = onnx_model.path
    common = ["evaluate", "--dataset", "synthetic", "--num", "2", "--height", "64", "--width", "96"]
    assert main([*common, "--model", str(folder), "--out", str(tmp_path / "torch")]) == 0
    assert main([*common, "--model", str(graph), "--out", str(tmp_path / "onnx")]) == 0
    torch_mean = json.loads((tmp_path / "torch" / "metrics.json").read_text())["results"][0]["mean"]
    onnx_mean = json.loads((tmp_path / "onnx" / "metrics.json").read_text())["results"][0]["mean"]
    for metric in ("abs_rel", "delta1", "rmse"):
        assert onnx_mean[metric] == pytest.approx(torch_mean[metric], rel=1e-3, abs=1e-6)
