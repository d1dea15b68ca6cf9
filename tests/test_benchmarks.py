"""The benchmark scripts run end to end in a toy configuration (structure only, never timings)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository's benchmarks/

from benchmarks.common import BenchmarkError, Runtime, interleaved, speed_ratio, summarise  # noqa: E402
from benchmarks.run_all import SECTIONS, main  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _positive(value: float) -> bool:
    return isinstance(value, float) and value > 0


def test_interleaved_timing_records_every_candidate_after_warmup():
    calls = {"a": 0, "b": 0}

    def candidate(name: str):
        return lambda: calls.__setitem__(name, calls[name] + 1)

    samples = interleaved({"a": candidate("a"), "b": candidate("b")}, warmup=2, repeats=3)
    assert calls == {"a": 5, "b": 5}
    assert {name: len(values) for name, values in samples.items()} == {"a": 3, "b": 3}
    summary = summarise(samples["a"], batch=4)
    assert summary["latency_ms"]["min"] <= summary["latency_ms"]["median"]
    assert summary["throughput"]["max"] >= summary["throughput"]["median"] > 0
    assert speed_ratio([2.0, 2.0], [1.0, 4.0]) == {"min": 2.0, "median": 1.25}


def test_cuda_requested_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BenchmarkError, match="CUDA is not available"):
        Runtime(device="cuda")
    with pytest.raises(SystemExit, match="CUDA is not available"):
        main(["--tiny", "--device", "cuda", "--out", "unused"])


def test_run_all_tiny_writes_json_and_markdown(tmp_path):
    results = main(["--tiny", "--threads", "1", "--out", str(tmp_path)])
    on_disk = json.loads((tmp_path / "results.json").read_text())
    markdown = (tmp_path / "results.md").read_text()
    assert set(SECTIONS) <= set(on_disk)
    environment = on_disk["environment"]
    assert environment["threads"] == 1 and environment["dtype"] == "float32"
    assert environment["cpu"] and environment["versions"]["torch"] == torch.__version__

    for record in results["inference"]:
        assert record["tokens"] > 1 and record["batch"] >= 1
        for model in ("clip_vision", "moa_depthclip"):
            assert _positive(record[model]["latency_ms"]["median"])
            assert _positive(record[model]["throughput"]["median"])
        assert _positive(record["throughput_ratio"]["median"])
    assert len(results["scaling"]) == len(results["inference"])
    assert all(_positive(row["moa_depthclip"]["relative_cost"]) for row in results["scaling"])

    onnx = results["onnx"]
    assert onnx["records"] and onnx["onnxruntime_options"]["intra_op_num_threads"] == 1
    assert set(onnx["graphs"]) == {"onnxruntime", "onnxruntime_int8"}
    for record in onnx["records"]:
        for name in ("onnxruntime", "onnxruntime_int8", "torch_int8"):
            assert _positive(record["speedup"][name]["median"])
        assert max(record["max_abs_error_m"].values()) < 1e-3  # the float32 graphs agree with PyTorch

    peers = results["peers"]
    assert peers["reference"] == "moa_depthclip" and peers["models"]["moa_depthclip"]["ours"]
    assert peers["models"]["glpn"]["published_nyu"]["delta1"] > 0
    assert all(info["parameters"] > 0 for info in peers["models"].values())
    settings = {(tuple(r["size"]), r["batch"]) for r in peers["records"]}
    assert settings == {((64, 96), 1), ((64, 96), 2)}
    for record in peers["records"]:
        models = record["models"]
        assert models["moa_depthclip"]["latency_vs_ours"]["median"] == 1.0
        if record["batch"] > 1:  # GLPN is benchmarked at batch 1 only
            assert "glpn" not in models
        for values in models.values():
            assert _positive(values["latency_ms"]["median"]) and values["memory"]["peak_mib"] > 0
    assert (tmp_path / "speed_accuracy.png").stat().st_size > 0

    data = results["data"]
    assert {"nyu_mat", "nyu_sync"} <= set(data["readers"])
    for record in data["readers"].values():
        assert _positive(record["images_per_second"]["median"])
        assert set(record["vs_training_step"]) == {"64x64"}

    for record in results["training"]:
        assert record["moa"]["trainable_parameters"] < record["full"]["trainable_parameters"]
        assert _positive(record["speedup_vs_full"]["median"])
        for mode in ("moa", "full"):
            memory = record[mode]["memory"]
            assert memory["peak_mib"] >= memory["before_mib"] > 0

    for record in results["depthclip"]:
        for name in ("depthclip_vit", "depthclip_rn50"):
            assert _positive(record[name]["throughput_ratio_vs_clip_vision"]["median"])

    assert set(results["targets"]) == {
        "moa_vs_clip_vision_throughput",
        "moa_stride8_vs_clip_vision_throughput",
        "onnxruntime_vs_torch",
    }
    for heading in (
        "## Inference",
        "## Scaling",
        "## PyTorch vs ONNX Runtime",
        "## Training step",
        "## DepthCLIP",
        "## Peers",
        "## Data loading",
    ):
        assert heading in markdown


def test_accuracy_tiny_writes_paired_comparisons(tmp_path):
    from benchmarks.accuracy import main as accuracy_main

    results = accuracy_main(
        ["--tiny", "--steps", "2", "--test-scenes", "3", "--threads", "1", "--out", str(tmp_path)]
    )
    on_disk = json.loads((tmp_path / "accuracy.json").read_text())
    assert on_disk["steps"] == 2 and set(on_disk["designs"]) == {"stride4 (default)", "stride8"}
    assert set(results["design_comparison"]) == {"abs_rel", "delta1", "rmse"}
    backends = results["int8"]["backends"]
    assert set(backends) == {"torch-int8", "onnx", "onnx-int8"}
    # float32 ONNX Runtime scores what PyTorch scores; int8 may differ, but only a little.
    assert abs(backends["onnx"]["vs_float32"]["abs_rel"]["difference"]) < 1e-4
    for values in backends.values():
        assert values["vs_float32"]["abs_rel"]["images"] == 3
    assert "## Accuracy" in (tmp_path / "accuracy.md").read_text()
