"""DepthCLIP zero-shot throughput (ViT-B/32 and RN50, random weights) next to the bare ViT tower.

DepthCLIP is the no-training baseline of the paper; its cost is one CLIP image forward plus a
7-way cosine/softmax per cell, so the bare ``CLIPVisionModel`` is again the reference measured in
the same run. Flip averaging is off (the published evaluation's flip doubles every figure).
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import ModelSpec, Runtime, log, random_images, time_setting
from moa_depthclip.baselines.depthclip import DepthCLIP, DepthCLIPConfig

MODELS = ("clip_vision", "depthclip_vit", "depthclip_rn50")


def build_depthclip(spec: ModelSpec) -> dict[str, DepthCLIP]:
    """Both DepthCLIP variants with random weights in the spec's shapes (flip averaging off)."""
    config = DepthCLIPConfig(flip=False)
    vit = DepthCLIP.from_vit("random", config, clip_config=spec.model.backbone.clip_config)
    resnet = DepthCLIP.from_resnet("random", config, architecture=spec.resnet, text_config=spec.resnet_text)
    return {"depthclip_vit": vit, "depthclip_rn50": resnet}


def run_depthclip(
    spec: ModelSpec,
    runtime: Runtime,
    sizes: list[tuple[int, int]],
    batches: list[int],
    warmup: int,
    repeats: int,
) -> list[dict[str, Any]]:
    """One record per (size, batch): the three models' speed and each DepthCLIP's ratio to the tower."""
    models = {name: runtime.prepare(model) for name, model in build_depthclip(spec).items()}
    bare = runtime.prepare(spec.build_bare())
    records = []
    for height, width in sizes:
        for batch in batches:
            images = random_images(batch, height, width, runtime.device)
            log(f"depthclip {height}x{width} batch {batch}")
            timed = time_setting(
                {
                    "clip_vision": lambda images=images: bare(
                        pixel_values=images, interpolate_pos_encoding=True
                    ),
                    "depthclip_vit": lambda images=images: models["depthclip_vit"](images),
                    "depthclip_rn50": lambda images=images: models["depthclip_rn50"](images),
                },
                runtime,
                warmup,
                repeats,
                batch,
                baseline="clip_vision",
            )
            record: dict[str, Any] = {
                "size": [height, width],
                "batch": batch,
                "tokens": spec.tokens(height, width),
            }
            for name in MODELS:
                record[name] = timed.summaries[name]
            for name in MODELS[1:]:
                record[name]["throughput_ratio_vs_clip_vision"] = timed.ratios[name]
            records.append(record)
    return records
