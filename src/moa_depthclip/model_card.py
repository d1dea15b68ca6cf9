"""Model cards that say what a saved checkpoint is (README.md beside config.json).

``save_pretrained`` / ``push_to_hub`` of every :class:`~moa_depthclip.model.contract.PretrainedDepthModel`
write :func:`render_model_card`'s text: the method, the backbone and whether its weights were
pretrained or random, the training data and steps, the evaluation table with its protocol, usage
code, the licence and the citations. Everything in it comes from the model itself (its config and
weights) or from an optional ``model.model_card_info`` dict that whoever trains or evaluates the
model sets before saving::

    model.model_card_info = {
        "training": {"dataset": "nyu_mat (795 official training frames)", "steps": 20000, ...},
        "evaluation": {"protocol": "nyu-eigen (Eigen crop, 1e-3..10 m, median of 654 test images)",
                       "metrics": {"abs_rel": 0.10, "rmse": 0.41, "delta1": 0.89}},
    }

What is not known is said plainly ("not recorded in this checkpoint"), never left as a placeholder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


LICENSE = "apache-2.0"
PAPER_ARXIV = "2604.01118"
PAPER_TITLE = "Lightweight Prompt-Guided CLIP Adaptation for Monocular Depth Estimation"

PAPER_BIBTEX = f"""@misc{{moadepthclip2026,
  title         = {{{PAPER_TITLE}}},
  year          = {{2026}},
  eprint        = {{{PAPER_ARXIV}}},
  archivePrefix = {{arXiv}},
  url           = {{https://arxiv.org/abs/{PAPER_ARXIV}}}
}}"""

DEPTHCLIP_BIBTEX = """@inproceedings{zhang2022depthclip,
  title     = {Can Language Understand Depth?},
  author    = {Zhang, Renrui and Zeng, Ziyao and Guo, Ziyu and Li, Yafeng},
  booktitle = {Proceedings of the 30th ACM International Conference on Multimedia (ACM MM)},
  year      = {2022}
}"""

METRIC_NAMES = {
    "abs_rel": "AbsRel ↓",
    "sq_rel": "SqRel ↓",
    "rmse": "RMSE (m) ↓",
    "rmse_log": "RMSE log ↓",
    "log10": "log10 ↓",
    "silog": "SILog ↓",
    "delta1": "δ<1.25 ↑",
    "delta2": "δ<1.25² ↑",
    "delta3": "δ<1.25³ ↑",
}


def render_model_card(
    model: nn.Module,
    training: Mapping[str, Any] | None = None,
    evaluation: Mapping[str, Any] | None = None,
) -> str:
    """The model card (Markdown with a YAML header) for any depth model of the package.

    ``training`` / ``evaluation`` override the ``"training"`` / ``"evaluation"`` entries of
    ``model.model_card_info`` (see the module docstring for their keys).
    """
    info = dict(getattr(model, "model_card_info", None) or {})
    training = training if training is not None else info.get("training")
    evaluation = evaluation if evaluation is not None else info.get("evaluation")
    kind = _kind(model)
    describe = {
        "moa": _describe_moa,
        "depthclip": _describe_depthclip,
        "constant": _describe_constant,
        "layout": _describe_layout,
    }.get(kind, _describe_other)
    title, summary, details, tags = describe(model)
    random_init = bool(getattr(model, "is_random_init", False))

    parts = [_front_matter(tags, kind), f"# {title}", "", summary, ""]
    if random_init:
        parts += [
            "> **Warning: random weights.** The CLIP backbone of this checkpoint started from random "
            "weights, not from pretrained CLIP. Its depth maps are meaningless unless it was trained, "
            "and even then it is far weaker than a model started from pretrained CLIP.",
            "",
        ]
    parts += ["## What this checkpoint is", "", *[f"- **{key}**: {value}" for key, value in details], ""]
    parts += _training_section(kind, training)
    parts += _evaluation_section(evaluation)
    parts += _usage_section(kind)
    parts += _parameters_section(model)
    parts += [
        "## Licence",
        "",
        "The code and this checkpoint's files are released under the Apache License 2.0. Pretrained "
        "CLIP weights, where used, come from OpenAI CLIP (MIT licence).",
        "",
    ]
    parts += _citation_section(kind)
    return "\n".join(parts).rstrip() + "\n"


# --------------------------------------------------------------------------------------------------
# per model kind


def _kind(model: nn.Module) -> str:
    name = type(model).__name__
    return {
        "MoADepthCLIP": "moa",
        "DepthCLIP": "depthclip",
        "ConstantDepth": "constant",
        "LayoutPriorDepth": "layout",
    }.get(name, "other")


Description = tuple[str, str, list[tuple[str, str]], list[str]]


def _vision_summary(clip_config: Mapping[str, Any] | None) -> str:
    vision = (clip_config or {}).get("vision_config") or {}
    if not vision:
        return "CLIP ViT (architecture not recorded)"
    patch = vision.get("patch_size", "?")
    return (
        f"CLIP ViT, {vision.get('num_hidden_layers', '?')} blocks, width {vision.get('hidden_size', '?')}, "
        f"patch {patch}" + (" (ViT-B/32)" if (patch, vision.get("hidden_size")) == (32, 768) else "")
    )


def _describe_moa(model: nn.Module) -> Description:
    config = model.config
    backbone = config.backbone
    weights = (
        f"pretrained CLIP weights from `{backbone.source}`"
        if backbone.pretrained
        else f"random initialisation (source `{backbone.source}`; no pretrained CLIP)"
    )
    moa, context, head, decoder = config.moa, config.context, config.head, config.decoder
    adapters = (
        f"{moa.num_experts} experts of rank {moa.rank}, router regulariser {moa.router_regularizer}"
        if moa.num_experts > 1
        else f"a single bottleneck adapter of rank {moa.rank} (no router)"
    )
    details = [
        (
            "Method",
            "MoA-DepthCLIP: a CLIP image encoder adapted to metric monocular depth with "
            "prompt-guided Mixture-of-Adapters, a progressive decoder and a hybrid bins + regression head",
        ),
        ("Backbone", _vision_summary(backbone.clip_config)),
        ("Backbone weights", weights),
        ("Trainable backbone blocks", _blocks(getattr(model, "unfrozen_blocks", backbone.unfrozen_blocks))),
        ("Mixture-of-Adapters", f"after blocks {_blocks(moa.layers)}: {adapters}"),
        (
            "Scene context",
            f"`{context.mode}` ({len(context.templates)} templates x {len(context.words)} "
            "distance words through the frozen CLIP text encoder)"
            if context.mode != "none"
            else "none",
        ),
        (
            "Decoder",
            f"taps at blocks {_blocks(decoder.tap_layers)}, stage channels {list(decoder.stage_channels)}",
        ),
        (
            "Head",
            f"{head.num_bins} {head.bin_spacing} bins over {head.min_depth:g}-{head.max_depth:g} m, "
            f"blend `{head.blend}`",
        ),
        ("Output", "metric depth in metres, (B, 1, H, W) for RGB input in [0, 1] with H, W multiples of 32"),
    ]
    title = "MoA-DepthCLIP: metric monocular depth from CLIP"
    summary = (
        "A metric monocular depth model (one RGB image in, depth in metres out) from the package "
        "`moa-depthclip`, an implementation of MoA-DepthCLIP "
        f"([arXiv {PAPER_ARXIV}](https://arxiv.org/abs/{PAPER_ARXIV}))."
    )
    return title, summary, details, ["moa-depthclip", "clip", "metric-depth"]


def _describe_depthclip(model: nn.Module) -> Description:
    config = model.config
    backbone = getattr(model, "backbone", "vit")
    source = getattr(model, "source", "unknown")
    random_init = bool(getattr(model, "is_random_init", False))
    weights = (
        f"random initialisation (source `{source}`; no pretrained CLIP)"
        if random_init
        else f"pretrained CLIP weights from `{source}`"
    )
    bins = ", ".join(
        f"{word} = {depth:g} m" for word, depth in zip(config.distance_words, config.bin_depths, strict=True)
    )
    details = [
        (
            "Method",
            "DepthCLIP zero-shot: per-patch similarity between CLIP image features and prompts "
            '"This {obj} is {distance}", softmax over distance words, depth = expected bin depth. No training.',
        ),
        (
            "Backbone",
            "CLIP ResNet-50"
            if "rn" in str(backbone).lower() or "resnet" in str(backbone).lower()
            else "CLIP ViT",
        ),
        ("Backbone weights", weights),
        ("Prompts", f"templates {list(config.templates)}, objects {list(config.objects)}"),
        ("Depth bins", bins),
        ("Temperature", f"{config.temperature:g}"),
        ("Flip averaging", "on by default" if config.flip else "off"),
        ("Input normalisation", config.normalization),
        ("Output", "metric depth in metres, (B, 1, H, W) for RGB input in [0, 1] with H, W multiples of 32"),
    ]
    title = "DepthCLIP (zero-shot) baseline"
    summary = (
        'The zero-shot DepthCLIP baseline ("Can Language Understand Depth?", ACM MM 2022) as packaged '
        "by `moa-depthclip`: the frozen CLIP image and text encoders, with the text side computed once "
        "and stored in this checkpoint."
    )
    return title, summary, details, ["depthclip", "clip", "zero-shot", "metric-depth"]


def _describe_constant(model: nn.Module) -> Description:
    value = float(model.value)
    details = [
        ("Method", f"constant-depth floor: {value:.4f} m at every pixel of every image (no image reading)"),
        ("Backbone", "none"),
        ("Use", "a floor every real model must beat; also checks an evaluation pipeline end to end"),
    ]
    summary = f"A baseline that predicts {value:.4f} m everywhere (typically the median training depth)."
    return "Constant-depth baseline", summary, details, ["baseline"]


def _describe_layout(model: nn.Module) -> Description:
    depth_map = model.depth_map
    height, width = depth_map.shape
    details = [
        (
            "Method",
            "layout-prior floor: the training set's mean depth at each pixel position, resized to "
            "the input (bilinear), whatever the image shows",
        ),
        ("Backbone", "none"),
        ("Map", f"{height}x{width}, {float(depth_map.min()):.2f}-{float(depth_map.max()):.2f} m"),
        ("Use", "a model that reads the image must beat it, not only the constant"),
    ]
    summary = "A baseline that predicts depth from the pixel position alone."
    return "Layout-prior baseline", summary, details, ["baseline"]


def _describe_other(model: nn.Module) -> Description:
    details = [("Method", f"`{type(model).__name__}` (a depth model of the package)")]
    return type(model).__name__, "A depth model saved by `moa-depthclip`.", details, []


def _blocks(blocks: Any) -> str:
    return ", ".join(str(b) for b in blocks) if blocks else "none"


# --------------------------------------------------------------------------------------------------
# sections


def _front_matter(tags: list[str], kind: str) -> str:
    all_tags = ["depth-estimation", "monocular-depth", *tags]
    lines = ["---", "library_name: moa-depthclip", f"license: {LICENSE}", "pipeline_tag: depth-estimation"]
    lines += ["tags:", *[f"- {tag}" for tag in dict.fromkeys(all_tags)]]
    if kind in ("moa", "depthclip"):
        lines.append(f"arxiv: '{PAPER_ARXIV}'" if kind == "moa" else "datasets: []")
    lines.append("---")
    return "\n".join(line for line in lines if line != "datasets: []")


def _training_section(kind: str, training: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Training", ""]
    if kind == "depthclip":
        return lines + ["None: DepthCLIP is zero-shot; only CLIP's own pretraining is involved.", ""]
    if kind == "constant":
        lines.append("The value is a statistic of training depths (e.g. their median); nothing is learned.")
    elif kind == "layout":
        lines.append("The map is the mean of training depth maps; nothing else is learned.")
    if not training:
        lines += [
            "Training data and steps: not recorded in this checkpoint. Checkpoints written by "
            "`moa-depthclip train` keep their `config.yaml` and `metrics.jsonl` in the run folder.",
            "",
        ]
        return lines
    labels = {
        "dataset": "Data",
        "steps": "Optimizer steps",
        "epochs": "Epochs",
        "batch_size": "Batch size",
        "preset": "Preset",
        "input_size": "Input size",
        "seed": "Seed",
        "duration": "Duration",
    }
    for key, value in training.items():
        lines.append(f"- **{labels.get(key, key.replace('_', ' ').capitalize())}**: {_value(value)}")
    return [*lines, ""]


def _evaluation_section(evaluation: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Evaluation", ""]
    if not evaluation or not evaluation.get("metrics"):
        return lines + [
            "No evaluation recorded in this checkpoint. Measure it with "
            "`moa-depthclip evaluate --model PATH --protocol nyu-eigen` (see docs/evaluation.md).",
            "",
        ]
    protocol = evaluation.get("protocol")
    lines.append(f"Protocol: {protocol}." if protocol else "Protocol: not recorded.")
    if evaluation.get("dataset"):
        lines.append(f"Data: {evaluation['dataset']}.")
    lines.append("")
    metrics = evaluation["metrics"]
    rows = (
        metrics
        if isinstance(metrics, Mapping) and all(isinstance(v, Mapping) for v in metrics.values())
        else {"this checkpoint": metrics}
    )
    names = list(dict.fromkeys(name for row in rows.values() for name in row))
    lines.append("| model | " + " | ".join(METRIC_NAMES.get(n, n) for n in names) + " |")
    lines.append("| --- |" + " --- |" * len(names))
    for label, row in rows.items():
        lines.append(f"| {label} | " + " | ".join(_number(row.get(n)) for n in names) + " |")
    return [*lines, ""]


def _usage_section(kind: str) -> list[str]:
    loader = {
        "moa": ("from moa_depthclip import MoADepthCLIP", "MoADepthCLIP"),
        "depthclip": ("from moa_depthclip import DepthCLIP", "DepthCLIP"),
        "constant": ("from moa_depthclip.baselines.constant import ConstantDepth", "ConstantDepth"),
        "layout": ("from moa_depthclip.baselines.layout_prior import LayoutPriorDepth", "LayoutPriorDepth"),
    }.get(kind)
    lines = ["## Usage", "", "Install the package (`pip install moa-depthclip`), then:", "", "```python"]
    if loader is None:
        lines += [
            "from moa_depthclip.inference.loading import load_depth_model",
            "",
            'model = load_depth_model("path/to/this/folder")',
        ]
    else:
        lines += [
            loader[0],
            "",
            f'model = {loader[1]}.from_pretrained("path/to/this/folder")  # or its hub id',
        ]
    lines += ['depth = model.predict("room.jpg")  # float32 (H, W), metres, at the image\'s size', "```", ""]
    if kind in ("moa", "depthclip"):
        lines += [
            "With transformers' depth pipeline (`predicted_depth` in metres at the input size, `depth` a picture):",
            "",
            "```python",
            "import moa_depthclip  # registers the model with transformers' Auto classes",
            "from transformers import pipeline",
            "",
            'estimator = pipeline("depth-estimation", model="path/to/this/folder")',
            'result = estimator("room.jpg")',
            "```",
            "",
        ]
    lines += [
        "From the command line (16-bit PNG in millimetres, .npy in metres, coloured pictures, point clouds):",
        "",
        "```bash",
        "moa-depthclip predict photos/ --model path/to/this/folder --out depth/",
        "```",
        "",
    ]
    return lines


def _parameters_section(model: nn.Module) -> list[str]:
    total = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if total == 0:
        return ["## Size", "", f"No parameters; {buffers:,} stored values.", ""]
    return [
        "## Size",
        "",
        f"{total:,} parameters, of which {trainable:,} trainable in this configuration.",
        "",
    ]


def _citation_section(kind: str) -> list[str]:
    lines = ["## Citation", ""]
    if kind in ("moa", "other", "constant", "layout"):
        lines += [
            f"MoA-DepthCLIP, {PAPER_TITLE} (arXiv {PAPER_ARXIV}):",
            "",
            "```bibtex",
            PAPER_BIBTEX,
            "```",
            "",
        ]
    if kind == "depthclip":
        lines += [
            "DepthCLIP (ACM MM 2022):",
            "",
            "```bibtex",
            DEPTHCLIP_BIBTEX,
            "```",
            "",
            f"and, for the package that ships it, MoA-DepthCLIP (arXiv {PAPER_ARXIV}):",
            "",
            "```bibtex",
            PAPER_BIBTEX,
            "```",
            "",
        ]
    return lines


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(dict(value), default=str)
    return str(value)


def _number(value: Any) -> str:
    if isinstance(value, (int, float)) and value == value:
        return f"{value:.3f}"
    return "–"
