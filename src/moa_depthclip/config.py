"""Every modelling choice of MoA-DepthCLIP as a serialisable dataclass.

A saved model stores ``ModelConfig.to_dict()`` next to its weights, so that it records exactly how
it was built; ``ModelConfig.from_dict`` rebuilds the same architecture.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from typing_extensions import Self

DEFAULT_CLIP = "openai/clip-vit-base-patch32"

# DepthCLIP's distance vocabulary (nearest to farthest) and templates for the scene-context bank.
DISTANCE_WORDS = (
    "giant",
    "extremely close",
    "close",
    "not in distance",
    "a little remote",
    "far",
    "unseen",
)
CONTEXT_TEMPLATES = (
    "This object is {}.",
    "A photo of something {}.",
    "The scene is {}.",
    "There is a {} surface in the room.",
)


@dataclass
class MoAConfig:
    """Mixture-of-Adapters inserted after selected transformer blocks.

    Each module holds ``num_experts`` bottleneck experts (``rank`` hidden units) and a token-wise
    router that sees the token *and* the global context vector.
    """

    # Blocks followed by a MoA module; ``[]`` is the fine-tuning-only ablation (no adapters).
    layers: tuple[int, ...] = (2, 5, 8, 11)
    # ``1`` is a plain bottleneck adapter: one expert, no router, no router regulariser.
    num_experts: int = 4
    rank: int = 64
    # Zero up-projections make the untrained model equal the pretrained backbone.
    zero_init: bool = True
    router_uses_context: bool = True
    # Depthwise conv over the patch grid inside the experts (0 disables it).
    spatial_kernel: int = 3
    # What keeps the router in shape, reported by the model as ``aux_loss``:
    # ``load_balance``: Switch-style term, zero when the experts share tokens equally;
    # ``entropy``: mean entropy of each token's gates (over log K), pushes every token to commit to
    # few experts; ``none``: no router term.
    router_regularizer: Literal["load_balance", "entropy", "none"] = "load_balance"
    # Weight of the load-balancing term (``router_regularizer = "load_balance"``).
    load_balance_weight: float = 0.01
    # Weight of the gate-entropy term (``router_regularizer = "entropy"``).
    entropy_weight: float = 0.01


@dataclass
class ContextConfig:
    """Global semantic context from the frozen CLIP text encoder over a prompt bank.

    ``static``: one vector (mean of the normalised prompt embeddings) shared by every image.
    ``image``:  the image CLS embedding attends over the prompt bank (softmax of cosine similarity),
    giving an image-conditioned context; an ablation of the static variant.
    ``none``:   no context at all (ablation): the router sees only the token, the decoder fuses none.
    """

    mode: Literal["static", "image", "none"] = "static"
    templates: tuple[str, ...] = CONTEXT_TEMPLATES
    words: tuple[str, ...] = DISTANCE_WORDS
    temperature: float = 0.07


@dataclass
class DecoderConfig:
    """Light progressive decoder from the tapped backbone layers to a dense feature map."""

    # Blocks whose output tokens (after their MoA module, if any) feed the decoder. Independent of
    # ``moa.layers`` so that moving or removing the adapters does not move the taps.
    tap_layers: tuple[int, ...] = (2, 5, 8, 11)
    # Channels of the fused coarse grid, then of each x2 upsampling stage.
    fusion_channels: int = 128
    stage_channels: tuple[int, ...] = (96, 64, 32)
    # Channels of a small conv stem on the image joining before the last stage (0 disables it).
    image_stem_channels: int = 0


@dataclass
class HeadConfig:
    """Hybrid head: classification over fixed depth bins plus direct regression."""

    num_bins: int = 128
    min_depth: float = 1e-3
    max_depth: float = 10.0
    bin_spacing: Literal["linear", "log"] = "linear"
    # ``learned``: per-pixel sigmoid gate predicted from the features; ``fixed``: constant weight;
    # ``bins`` / ``regression``: one branch only (ablations; the other branch is frozen and unused).
    blend: Literal["learned", "fixed", "bins", "regression"] = "learned"
    fixed_blend_weight: float = 0.5


@dataclass
class BackboneConfig:
    """Which CLIP to start from and what of it to train.

    ``source`` is a Hugging Face hub id, a ``save_pretrained`` directory, an OpenAI/open_clip
    checkpoint file, or ``"random"`` for an explicitly random initialisation (offline/demo use).
    ``clip_config`` holds the transformers ``CLIPConfig.to_dict()`` actually used, so that a saved
    model can be rebuilt without reaching the original source.
    """

    source: str = DEFAULT_CLIP
    unfrozen_blocks: tuple[int, ...] = (8, 9, 10, 11)
    clip_config: dict[str, Any] | None = None
    # Set by ``MoADepthCLIP.from_clip``: True only when real CLIP weights were loaded.
    pretrained: bool = False


class SerializableConfig:
    """dict/JSON round trip for the top-level config dataclasses (nested ones come along)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return dataclass_from_dict(cls, data)

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))


@dataclass
class ModelConfig(SerializableConfig):
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    moa: MoAConfig = field(default_factory=MoAConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    head: HeadConfig = field(default_factory=HeadConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return dataclass_from_dict(cls, upgrade_model_dict(data))


def upgrade_model_dict(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a model config saved by an older version up to date, with the same behaviour.

    Before ``decoder.tap_layers`` existed the decoder tapped exactly the MoA layers, so a saved
    config without it gets ``tap_layers = moa.layers``. Only complete saved configs (every decoder
    and MoA field written out) are upgraded: in a hand-written partial config a missing
    ``tap_layers`` means the default, so that moving the adapters never moves the taps silently.
    """
    decoder, moa = data.get("decoder"), data.get("moa")
    if not (isinstance(decoder, dict) and isinstance(moa, dict)) or "tap_layers" in decoder:
        return data
    saved = {"fusion_channels", "stage_channels"} <= decoder.keys() and {
        "layers",
        "load_balance_weight",
    } <= moa.keys()
    if not saved:
        return data
    return {**data, "decoder": {**decoder, "tap_layers": list(moa["layers"])}}


def dataclass_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) dataclass from ``asdict`` output; lists become tuples again.

    Unknown keys are an error (a typo in a config must not be silently ignored).
    """
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        default = getattr(cls(), name) if _has_default(known[name]) else None
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            kwargs[name] = dataclass_from_dict(type(default), value)
        elif isinstance(value, list) and isinstance(default, tuple):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
