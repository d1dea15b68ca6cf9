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
    for record in onnx["records"]:
        assert _positive(record["speedup"]["median"]) and record["max_abs_error_m"] < 1e-3

    for record in results["training"]:
        assert record["moa"]["trainable_parameters"] < record["full"]["trainable_parameters"]
        assert _positive(record["speedup_vs_full"]["median"])
        for mode in ("moa", "full"):
            memory = record[mode]["memory"]
            assert memory["peak_mib"] >= memory["before_mib"] > 0

    for record in results["depthclip"]:
        for name in ("depthclip_vit", "depthclip_rn50"):
            assert _positive(record[name]["throughput_ratio_vs_clip_vision"]["median"])

    assert set(results["targets"]) == {"moa_vs_clip_vision_throughput", "onnxruntime_vs_torch"}
    for heading in (
        "## Inference",
        "## Scaling",
        "## PyTorch vs ONNX Runtime",
        "## Training step",
        "## DepthCLIP",
    ):
        assert heading in markdown
