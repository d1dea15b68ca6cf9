"""Shared benchmark machinery: the runtime (device, dtype, threads), interleaved timing, statistics.

Absolute timings on a shared or thermally throttled machine drift by tens of percent between
minutes, so every figure this package reports is paired with a baseline measured *in the same run*:
the candidates are timed round-robin (the order alternates every round, so neither side always
runs first), and ratios are taken round by round before the median is computed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import CLIPConfig, CLIPTextConfig, CLIPVisionConfig, CLIPVisionModel

from moa_depthclip.baselines.clip_resnet import ModifiedResNetConfig
from moa_depthclip.config import BackboneConfig, DecoderConfig, ModelConfig
from moa_depthclip.model.moa_depthclip import MoADepthCLIP


class BenchmarkError(RuntimeError):
    """A benchmark cannot run as asked (e.g. CUDA requested on a machine without it)."""


# -------------------------------------------------------------------------------------------------
# runtime


@dataclass
class Runtime:
    """Where and how the models run. ``dtype`` ``bfloat16`` means bf16 autocast (weights stay fp32)."""

    device: str = "cpu"
    dtype: str = "float32"
    compile: bool = False
    threads: int = field(default_factory=torch.get_num_threads)

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "bfloat16"):
            raise BenchmarkError(f"dtype must be float32 or bfloat16, got {self.dtype!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise BenchmarkError(
                f"--device {self.device} was requested but CUDA is not available to this torch "
                f"({torch.__version__}, built with CUDA {torch.version.cuda}): run with --device cpu "
                "or on a machine with an NVIDIA GPU and a CUDA build of torch."
            )
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise BenchmarkError(f"device must be cpu or cuda[:N], got {self.device!r}")
        if self.threads < 1:
            raise BenchmarkError(f"threads must be >= 1, got {self.threads}")
        torch.set_num_threads(self.threads)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast when asked for; a no-op context for float32."""
        if self.dtype == "float32":
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda" if self.is_cuda else "cpu", dtype=torch.bfloat16)

    def sync(self) -> None:
        """Wait for queued GPU work, so that a timer stopped afterwards measures it."""
        if self.is_cuda:
            torch.cuda.synchronize(self.device)

    def prepare(self, module: torch.nn.Module, train: bool = False) -> Callable[..., Any]:
        """Move to the device, set the mode, optionally wrap in ``torch.compile``."""
        module.to(self.device).train(train)
        return torch.compile(module) if self.compile else module

    def describe(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": self.dtype, "compile": self.compile, "threads": self.threads}


def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux, else the platform module)."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment(runtime: Runtime) -> dict[str, Any]:
    """Everything a reader needs to know to compare a figure with another machine's."""
    versions: dict[str, str | None] = {"torch": torch.__version__, "python": platform.python_version()}
    for name in ("transformers", "onnxruntime", "onnx", "numpy"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    info: dict[str, Any] = {
        **runtime.describe(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions,
        "torch_parallel": torch.__config__.parallel_info().splitlines()[0:4],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "onnxruntime_spinning": onnxruntime_spinning(),
    }
    if runtime.is_cuda:
        info["gpu"] = torch.cuda.get_device_name(runtime.device)
        info["versions"]["cuda"] = torch.version.cuda
    return info


def onnxruntime_spinning() -> bool:
    """ONNX Runtime's threads spin like OpenMP's unless OpenMP was told to sleep: same policy both."""
    return (os.environ.get("OMP_WAIT_POLICY") or "").upper() != "PASSIVE"


# -------------------------------------------------------------------------------------------------
# what is measured


@dataclass
class ModelSpec:
    """The architectures benchmarked (random weights: speed does not depend on their values).

    The default is the paper's ViT-B/32 MoA-DepthCLIP and CLIP RN50; tests pass tiny shapes.
    """

    model: ModelConfig = field(default_factory=lambda: ModelConfig(BackboneConfig(source="random")))
    resnet: ModifiedResNetConfig | None = None  # None: RN50
    resnet_text: CLIPTextConfig | None = None  # None: RN50's text tower

    def clip_config(self) -> CLIPConfig:
        data = self.model.backbone.clip_config
        return CLIPConfig() if data is None else CLIPConfig.from_dict(data)

    def vision_config(self) -> CLIPVisionConfig:
        return self.clip_config().vision_config

    def build_moa(self) -> MoADepthCLIP:
        return MoADepthCLIP(ModelConfig.from_dict(self.model.to_dict()))

    def build_bare(self) -> CLIPVisionModel:
        """transformers' own CLIP image tower (SDPA attention, as in the model): the baseline."""
        config = self.vision_config()
        config._attn_implementation = "sdpa"
        return CLIPVisionModel(config)

    def tokens(self, height: int, width: int) -> int:
        patch = self.vision_config().patch_size
        return (height // patch) * (width // patch) + 1


def tiny_spec() -> ModelSpec:
    """Toy shapes with the real topology (12 blocks, patch 32): exercises every path in seconds."""
    clip = CLIPConfig(
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=12, num_attention_heads=1, image_size=64
        ),
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1),
        projection_dim=16,
    )
    model = ModelConfig(
        backbone=BackboneConfig(source="random", clip_config=clip.to_dict()),
        decoder=DecoderConfig(fusion_channels=16, stage_channels=(8, 8, 8)),
    )
    resnet = ModifiedResNetConfig(layers=(1, 1, 1, 1), width=8, output_dim=128, heads=4, input_resolution=64)
    text = CLIPTextConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=1,
        projection_dim=resnet.output_dim,
        hidden_act="quick_gelu",
    )
    return ModelSpec(model=model, resnet=resnet, resnet_text=text)


# -------------------------------------------------------------------------------------------------
# timing


def interleaved(
    candidates: dict[str, Callable[[], Any]],
    warmup: int,
    repeats: int,
    sync: Callable[[], None] = lambda: None,
) -> dict[str, list[float]]:
    """Seconds per call of every candidate, timed round-robin; warm-up rounds are not recorded.

    The order alternates between rounds (A B, B A, ...) so that a slow phase of the machine, or a
    cache left warm by the previous call, does not always favour the same candidate.
    """
    if repeats < 1:
        raise BenchmarkError(f"repeats must be >= 1, got {repeats}")
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            sync()
            start = time.perf_counter()
            candidates[name]()
            sync()
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                samples[name].append(elapsed)
    return samples


@dataclass
class TimedSetting:
    """One setting's interleaved samples, their summaries, and each candidate's ratio to the baseline."""

    samples: dict[str, list[float]]
    summaries: dict[str, dict[str, Any]]
    # Throughput of each non-baseline candidate relative to the baseline (>1: candidate faster).
    ratios: dict[str, dict[str, float]]


def time_setting(
    candidates: dict[str, Callable[[], Any]],
    runtime: Runtime,
    warmup: int,
    repeats: int,
    batch: int = 1,
    baseline: str | None = None,
    inference: bool = True,
) -> TimedSetting:
    """Time ``candidates`` at one setting, interleaved round by round, and pair each with ``baseline``.

    The one place every benchmark times things: inference mode and autocast as the runtime asks
    (``inference=False`` for training steps, which need autograd), device synchronisation around
    every call, warm-up rounds discarded, summaries per ``batch`` images, round-by-round ratios.
    """
    if baseline is not None and baseline not in candidates:
        raise BenchmarkError(f"baseline {baseline!r} is not one of the candidates {sorted(candidates)}")
    context = inference_context(runtime) if inference else contextlib.nullcontext()
    with context:
        samples = interleaved(candidates, warmup, repeats, runtime.sync)
    summaries = {name: summarise(values, batch) for name, values in samples.items()}
    ratios = {}
    if baseline is not None:
        ratios = {
            name: speed_ratio(samples[baseline], values)
            for name, values in samples.items()
            if name != baseline
        }
    return TimedSetting(samples=samples, summaries=summaries, ratios=ratios)


def summarise(seconds: list[float], batch: int = 1) -> dict[str, Any]:
    """min/median latency (ms per call) and the matching throughput (images per second)."""
    best, median = min(seconds), statistics.median(seconds)
    return {
        "latency_ms": {"min": best * 1e3, "median": median * 1e3},
        "throughput": {"max": batch / best, "median": batch / median},
        "repeats": len(seconds),
    }


def speed_ratio(baseline: list[float], candidate: list[float]) -> dict[str, float]:
    """Throughput of ``candidate`` relative to ``baseline`` (>1: candidate faster).

    ``min``: ratio of the best times; ``median``: median of the round-by-round ratios (each round
    times both back to back, so a machine-wide slowdown affects both sides of a ratio alike).
    """
    paired = [b / c for b, c in zip(baseline, candidate, strict=True)]
    return {"min": min(baseline) / min(candidate), "median": statistics.median(paired)}


@contextlib.contextmanager
def inference_context(runtime: Runtime) -> Iterator[None]:
    with torch.inference_mode(), runtime.autocast():
        yield


def random_images(batch: int, height: int, width: int, device: str, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator).to(device)


def parse_size(text: str) -> tuple[int, int]:
    """``416x544`` -> (416, 544), for argparse."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"size must look like 416x544, got {text!r}") from error
    return height, width


def log(message: str) -> None:
    """Progress on stderr, so that stdout stays clean for JSON when a script is piped."""
    print(message, file=sys.stderr, flush=True)
