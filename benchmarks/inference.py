"""Inference: MoA-DepthCLIP against the bare transformers ``CLIPVisionModel`` at the same input.

The bare tower (``interpolate_pos_encoding=True``, SDPA attention) is the floor every ViT-B/32
depth model pays; the ratio says what the adapters, the decoder and the hybrid head add on top.
Target: MoA-DepthCLIP keeps at least 95% of the bare backbone's throughput.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from benchmarks.common import BenchmarkError, ModelSpec, Runtime, log, random_images, time_setting
from moa_depthclip.config import ModelConfig

TARGET_RATIO = 0.95


def run_inference(
    spec: ModelSpec,
    runtime: Runtime,
    sizes: list[tuple[int, int]],
    batches: list[int],
    warmup: int,
    repeats: int,
) -> list[dict[str, Any]]:
    """One record per (size, batch): each model's latency/throughput and its throughput ratio to the tower.

    ``moa_depthclip_stride8`` is the faster design (decoder and head at stride 8, one bilinear
    upsampling to the input; ``decoder.stage_channels`` without its last stage), measured in the
    same rounds; its accuracy against the default is measured by ``benchmarks/accuracy.py``.
    """
    moa = runtime.prepare(spec.build_moa())
    stride8 = runtime.prepare(stride8_spec(spec).build_moa())
    bare = runtime.prepare(spec.build_bare())
    records = []
    for height, width in sizes:
        for batch in batches:
            images = random_images(batch, height, width, runtime.device)
            log(f"inference {height}x{width} batch {batch}")
            timed = time_setting(
                {
                    "clip_vision": lambda images=images: bare(
                        pixel_values=images, interpolate_pos_encoding=True
                    ),
                    "moa_depthclip": lambda images=images: moa(images),
                    "moa_depthclip_stride8": lambda images=images: stride8(images),
                },
                runtime,
                warmup,
                repeats,
                batch,
                baseline="clip_vision",
            )
            ratio = timed.ratios["moa_depthclip"]
            records.append(
                {
                    "size": [height, width],
                    "batch": batch,
                    "tokens": spec.tokens(height, width),
                    "clip_vision": timed.summaries["clip_vision"],
                    "moa_depthclip": timed.summaries["moa_depthclip"],
                    "moa_depthclip_stride8": timed.summaries["moa_depthclip_stride8"],
                    "throughput_ratio": ratio,
                    "throughput_ratio_stride8": timed.ratios["moa_depthclip_stride8"],
                    "target": TARGET_RATIO,
                    "meets_target": ratio["median"] >= TARGET_RATIO,
                }
            )
    return records


def stride8_spec(spec: ModelSpec) -> ModelSpec:
    """The same model with the decoder's last (stride-4) stage dropped: head at stride 8."""
    model = ModelConfig.from_dict(spec.model.to_dict())
    if len(model.decoder.stage_channels) < 3:
        raise BenchmarkError("the stride-8 variant needs a decoder with (at least) three stages")
    model.decoder.stage_channels = model.decoder.stage_channels[:-1]
    return replace(spec, model=model)


def scaling(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How cost grows with tokens and batch: median ms per image, relative to the cheapest setting."""
    if not records:
        return []

    def per_image(record: dict[str, Any], model: str) -> float:
        return record[model]["latency_ms"]["median"] / record["batch"]

    reference = min(records, key=lambda r: (r["tokens"], r["batch"]))
    rows = []
    for record in records:
        row = {"size": record["size"], "batch": record["batch"], "tokens": record["tokens"]}
        for model in ("clip_vision", "moa_depthclip"):
            ms = per_image(record, model)
            row[model] = {
                "ms_per_image": ms,
                "relative_cost": ms / per_image(reference, model),
                "us_per_token": 1e3 * ms / record["tokens"],
            }
        rows.append(row)
    return rows
