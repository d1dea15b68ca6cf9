"""Complete validation of the configuration dataclasses: ``Literal`` values, types, ranges.

One walk over any (nested) config dataclass (:class:`~moa_depthclip.config.ModelConfig`, the
training ``TrainConfig``) checks every field against its annotation and against :data:`RANGES`, and
raises :class:`~moa_depthclip.errors.ConfigError` naming the dotted key, the value and what is
allowed. The rules are keyed by class and field, so ``HeadConfig.num_bins`` is checked whether it is
reached as ``head.num_bins`` (a saved model's config) or ``model.head.num_bins`` (a training run).
Checks only read the config: nothing here changes a value.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

from moa_depthclip.errors import ConfigError

Rule = Callable[[Any], str | None]  # returns what is wrong, or None


def at_least(low: float) -> Rule:
    return lambda value: None if value >= low else f"must be at least {low:g}"


def above(low: float) -> Rule:
    return lambda value: None if value > low else f"must be above {low:g}"


def between(low: float, high: float) -> Rule:
    return lambda value: None if low <= value <= high else f"must be between {low:g} and {high:g}"


def each(rule: Rule) -> Rule:
    """Apply ``rule`` to every item of a tuple value (None passes)."""

    def check(value: Any) -> str | None:
        if value is None:
            return None
        for item in value:
            problem = rule(item)
            if problem:
                return f"every entry {problem}"
        return None

    return check


def pair_of_multiples(multiple: int) -> Rule:
    """A (height, width) pair of positive multiples of ``multiple`` (None passes)."""

    def check(value: Any) -> str | None:
        if value is None:
            return None
        if len(value) != 2 or any(v < multiple or v % multiple for v in value):
            return f"must be [height, width], positive multiples of {multiple} (e.g. [{multiple * 13}, {multiple * 17}])"
        return None

    return check


def device_problem(value: str) -> str | None:
    """What is wrong with a torch device name (``auto`` allowed), or None; checks availability too."""
    if value == "auto":
        return None
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        return "is not a device: use auto, cpu, cuda, cuda:N or mps"
    if device.type == "cuda" and not torch.cuda.is_available():
        return "this PyTorch build or machine has no CUDA GPU (torch.cuda.is_available() is False): use cpu or auto"
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        return f"there are only {torch.cuda.device_count()} CUDA device(s)"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return "MPS is not available on this machine: use cpu or auto"
    if device.type not in ("cpu", "cuda", "mps"):
        return "is not supported here: use auto, cpu, cuda, cuda:N or mps"
    return None


def check_device(value: str, setting: str) -> str:
    """``value`` if it names a usable device, else :class:`ConfigError` naming ``setting``."""
    problem = device_problem(value)
    if problem:
        raise ConfigError(f"{setting}={value}: {problem}")
    return value


def non_empty(value: Any) -> str | None:
    return None if len(value) > 0 else "must not be empty"


# (class name, field) -> rule. Integers and floats are also checked for type by the walk.
RANGES: dict[tuple[str, str], Rule] = {
    # model
    ("MoAConfig", "num_experts"): at_least(1),
    ("MoAConfig", "rank"): at_least(1),
    ("MoAConfig", "spatial_kernel"): at_least(0),
    ("MoAConfig", "layers"): each(at_least(0)),
    ("MoAConfig", "load_balance_weight"): at_least(0),
    ("MoAConfig", "entropy_weight"): at_least(0),
    ("ContextConfig", "templates"): non_empty,
    ("ContextConfig", "words"): non_empty,
    ("ContextConfig", "temperature"): above(0),
    ("DecoderConfig", "fusion_channels"): at_least(1),
    ("DecoderConfig", "stage_channels"): each(at_least(1)),
    ("DecoderConfig", "image_stem_channels"): at_least(0),
    ("DecoderConfig", "tap_layers"): each(at_least(0)),
    ("HeadConfig", "num_bins"): at_least(2),
    ("HeadConfig", "min_depth"): above(0),
    ("HeadConfig", "max_depth"): above(0),
    ("HeadConfig", "fixed_blend_weight"): between(0, 1),
    ("BackboneConfig", "unfrozen_blocks"): each(at_least(0)),
    # training data
    ("DataConfig", "train_scenes"): at_least(1),
    ("DataConfig", "val_scenes"): at_least(0),
    ("DataConfig", "render_size"): pair_of_multiples(1),
    ("DataConfig", "crop_size"): pair_of_multiples(32),
    ("DataConfig", "resize_to"): pair_of_multiples(1),
    ("DataConfig", "depth_scale"): lambda v: None if v is None or v > 0 else "must be above 0",
    ("DataConfig", "batch_size"): at_least(1),
    ("DataConfig", "num_workers"): at_least(0),
    ("DataConfig", "val_limit"): lambda v: None if v is None or v >= 1 else "must be at least 1 (or null)",
    # optimisation
    ("OptimConfig", "lr"): at_least(0),
    ("OptimConfig", "backbone_lr"): at_least(0),
    ("OptimConfig", "weight_decay"): at_least(0),
    ("OptimConfig", "betas"): lambda v: (
        None if len(v) == 2 and all(0 <= b < 1 for b in v) else "must be two numbers in [0, 1)"
    ),
    ("OptimConfig", "eps"): above(0),
    ("OptimConfig", "warmup_steps"): at_least(0),
    ("OptimConfig", "min_lr_ratio"): between(0, 1),
    ("OptimConfig", "grad_clip"): at_least(0),
    ("OptimConfig", "accumulation_steps"): at_least(1),
    # loss
    ("LossConfig", "silog_lambda"): between(0, 1),
    ("LossConfig", "silog_scale"): above(0),
    ("LossConfig", "gradient_scales"): at_least(1),
    ("LossConfig", "ssim_window"): lambda v: None if v >= 1 and v % 2 == 1 else "must be an odd number >= 1",
    ("LossConfig", "min_valid_depth"): at_least(0),
    ("LossConfig", "max_depth"): above(0),
    # run
    ("RunConfig", "max_steps"): at_least(1),
    ("RunConfig", "threads"): lambda v: (
        None if v is None or v >= 1 else "must be at least 1 (or null: one per core)"
    ),
    ("RunConfig", "log_every"): at_least(1),
    ("RunConfig", "image_every"): at_least(0),
    ("RunConfig", "val_every"): at_least(0),
    ("RunConfig", "checkpoint_every"): at_least(0),
    ("RunConfig", "keep_checkpoints"): at_least(1),
}

# Loss weights: every term of the composite loss is a non-negative weight.
for _term in ("ce", "silog", "l1", "reg_l1", "gradient", "ssim", "load_balance"):
    RANGES[("LossConfig", _term)] = at_least(0)


def check_config(config: Any, prefix: str = "") -> None:
    """Raise :class:`ConfigError` for the first field of ``config`` (recursively) that is invalid."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        name = f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            check_config(value, f"{name}.")
            continue
        problem = _type_problem(value, hints.get(field.name, Any))
        if problem is None:
            rule = RANGES.get((type(config).__name__, field.name))
            problem = rule(value) if rule is not None else None
        if problem is not None:
            raise ConfigError(f"{name}={_show(value)}: {problem}")
    _check_relations(config, prefix)


def _check_relations(config: Any, prefix: str) -> None:
    """Rules between fields of one dataclass."""
    kind = type(config).__name__
    if kind == "HeadConfig" and config.min_depth >= config.max_depth:
        raise ConfigError(
            f"{prefix}min_depth={config.min_depth:g} is not below {prefix}max_depth={config.max_depth:g}: "
            f"the depth range must be (min_depth, max_depth) with min_depth < max_depth"
        )
    if kind == "BackboneConfig" and config.clip_config is not None:
        blocks = _vision_blocks(config.clip_config)
        bad = [index for index in config.unfrozen_blocks if index >= blocks] if blocks else []
        if bad:
            raise ConfigError(
                f"{prefix}unfrozen_blocks: block(s) {bad} do not exist (the backbone has {blocks} blocks, 0..{blocks - 1})"
            )
    if kind == "ModelConfig" and config.backbone.clip_config is not None:
        blocks = _vision_blocks(config.backbone.clip_config)
        for section in ("moa", "decoder"):
            layers = getattr(getattr(config, section), "layers" if section == "moa" else "tap_layers", ())
            bad = [index for index in layers or () if blocks and index >= blocks]
            if bad:
                key = "layers" if section == "moa" else "tap_layers"
                raise ConfigError(
                    f"{prefix}{section}.{key}: block(s) {bad} do not exist (the backbone has {blocks} blocks, "
                    f"0..{blocks - 1})"
                )


def _vision_blocks(clip_config: dict[str, Any]) -> int | None:
    vision = clip_config.get("vision_config") or {}
    blocks = vision.get("num_hidden_layers")
    return int(blocks) if isinstance(blocks, int) else None


def _type_problem(value: Any, annotation: Any) -> str | None:
    """What is wrong with ``value`` for ``annotation`` (Literal, bool, int, float, str, optional, tuples)."""
    options = _union_members(annotation)
    if value is None:
        return None if type(None) in options or Any in options else "must not be null"
    problems = [_member_problem(value, option) for option in options if option is not type(None)]
    if any(problem is None for problem in problems):
        return None
    return problems[0] if problems else None


def _member_problem(value: Any, annotation: Any) -> str | None:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        return None if value in allowed else f"must be one of {', '.join(map(str, allowed))}"
    if annotation is Any:
        return None
    if annotation is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if annotation is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"
    if annotation is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else "must be a finite number"
    if annotation is str:
        return None if isinstance(value, str) else "must be a string"
    if origin is tuple:
        if not isinstance(value, tuple):
            return "must be a list"
        args = typing.get_args(annotation)
        item = args[0] if args else Any
        if len(args) == 2 and args[1] is Ellipsis or len(set(args)) == 1:
            if len(args) > 1 and args[1] is not Ellipsis and len(value) != len(args):
                return f"must be a list of {len(args)} values"
            problems = [_type_problem(v, item) for v in value]
            return next((f"every entry {p}" for p in problems if p), None)
        return None
    return None  # dicts and other annotations: their own code checks them


def _union_members(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return (annotation,)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
