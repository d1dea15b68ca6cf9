"""DepthCLIP: zero-shot metric depth from CLIP by matching image patches to distance prompts.

DepthCLIP ("Can Language Understand Depth?", ACM MM 2022) trains nothing. Seven prompts
"This object is <distance word>" are encoded once by CLIP's text tower; every cell of CLIP's final
feature grid is compared with them (cosine similarity x 100 / temperature), the softmax over the
seven words weights seven fixed depths, and the expected depth is upsampled to the image.

Two image towers are supported: OpenAI's ResNet-50 (as published; ``DepthCLIP.from_resnet``) and
CLIP ViTs through transformers (``DepthCLIP.from_vit``). The text features are computed at
construction and kept as a buffer, so inference needs neither text encoder nor tokenizer.
See docs/depthclip.md for the method, our interpretations and how to get the weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPTextConfig, CLIPTokenizer

from moa_depthclip import clip_loading
from moa_depthclip.baselines.clip_resnet import (
    DEFAULT_RN50_PATH,
    ModifiedResNet,
    ModifiedResNetConfig,
    load_resnet_clip,
    random_resnet_clip,
)
from moa_depthclip.clip_loading import load_clip
from moa_depthclip.config import DEFAULT_CLIP, DISTANCE_WORDS, SerializableConfig
from moa_depthclip.data.transforms import NORMALIZATIONS
from moa_depthclip.errors import CheckpointError, InputSizeError
from moa_depthclip.model.contract import PretrainedDepthModel
from moa_depthclip.model.outputs import DepthOutput
from moa_depthclip.tokenizer import byte_level_clip_tokenizer

RANDOM = "random"
# The published vocabulary, nearest to farthest (the one the MoA context bank uses too), and the
# depth (metres) each word stands for.
DEPTHCLIP_DISTANCE_WORDS = DISTANCE_WORDS
DEPTHCLIP_BIN_DEPTHS = (1.00, 1.50, 2.00, 2.25, 2.50, 2.75, 3.00)

ResNetFeatures = Literal["released_code", "value", "attention"]
Normalization = Literal["imagenet", "clip"]


@dataclass
class DepthCLIPConfig(SerializableConfig):
    """Every choice of DepthCLIP. The defaults are what the official DepthCLIP code computes.

    ``templates`` use ``{obj}`` and ``{distance}``; with several templates or objects the prompt
    embeddings of one distance word are normalised, averaged and normalised again (CLIP's prompt
    ensembling). ``flip`` makes the prediction path average with the mirrored image by default
    (``DepthCLIP.default_flip``; the model's forward never flips, so asking twice flips once; the
    ``nyu-depthclip`` evaluation protocol flips anyway). ``align_corners`` is used by the final
    bilinear upsampling (the official code uses True). ``normalization``:
    ``imagenet`` mean/std (the official evaluation) or ``clip`` (CLIP's own preprocessing).

    ``resnet_features`` chooses how the ResNet's final feature map becomes per-cell features (see
    docs/depthclip.md): ``released_code`` (default, the official code) L2-normalises the raw
    layer-4 features and keeps every other channel, no projection; ``value`` passes every cell
    through the attention pool's value and output projections without positional embedding
    (MaskCLIP); ``attention`` runs the attention pool with every cell as a query (the attention pool
    in DepthCLIP's code, positional embedding resized bilinearly with corners aligned).
    ``resnet_positional_embedding`` adds the bicubically resized positional embedding before the
    ``value`` projection (a variant of ours, neither MaskCLIP nor DepthCLIP).
    """

    templates: tuple[str, ...] = ("This {obj} is {distance}",)
    objects: tuple[str, ...] = ("object",)
    distance_words: tuple[str, ...] = DEPTHCLIP_DISTANCE_WORDS
    bin_depths: tuple[float, ...] = DEPTHCLIP_BIN_DEPTHS
    temperature: float = 0.1
    logit_scale: float = 100.0
    flip: bool = False
    align_corners: bool = True
    resnet_features: ResNetFeatures = "released_code"
    resnet_positional_embedding: bool = False
    normalization: Normalization = "imagenet"

    def __post_init__(self) -> None:
        if len(self.distance_words) != len(self.bin_depths) or not self.bin_depths:
            raise ValueError(
                f"DepthCLIP needs one bin depth per distance word: {len(self.distance_words)} words, "
                f"{len(self.bin_depths)} depths."
            )
        if any(depth <= 0 for depth in self.bin_depths):
            raise ValueError(f"bin depths must be positive metres, got {self.bin_depths}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if not self.templates or not self.objects:
            raise ValueError("DepthCLIP needs at least one template and one object word.")
        if self.resnet_features not in ("value", "attention", "released_code"):
            raise ValueError(
                f"unknown resnet_features {self.resnet_features!r}: use released_code, value or attention"
            )
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {self.normalization!r}: use imagenet or clip")

    def prompts(self) -> list[list[str]]:
        """For each distance word, the prompts whose embeddings are averaged."""
        return [
            [template.format(obj=obj, distance=word) for template in self.templates for obj in self.objects]
            for word in self.distance_words
        ]


# --------------------------------------------------------------------------------------------------
# Text side: prompts -> normalised text features (computed once)


def load_tokenizer(source: str = DEFAULT_CLIP) -> CLIPTokenizer:
    """``CLIPTokenizer`` from a hub id or a directory, with an error that says where DepthCLIP looks."""
    return clip_loading.load_tokenizer(
        source,
        hint=(
            f"DepthCLIP needs it once, to encode its prompts; checkpoint files do not contain it. "
            f"On a machine with internet access fetch its two files into the folder of your checkpoint:\n"
            f"    huggingface-cli download {DEFAULT_CLIP} vocab.json merges.txt --local-dir weights\n"
            f"(they are then found next to weights/RN50.pt), or pass a folder holding them as the "
            f"tokenizer source (any Hugging Face CLIP folder has them)."
        ),
    )


def tokenizer_source_for(checkpoint: str | Path) -> str:
    """Where the tokenizer of a checkpoint *file* comes from when none is given: the file's folder
    if it holds the tokenizer files (vocab.json + merges.txt, or tokenizer.json), else the hub id
    ``DEFAULT_CLIP`` (found offline when it is in the Hugging Face cache)."""
    folder = Path(checkpoint).expanduser().parent
    if (folder / "tokenizer.json").is_file() or (
        (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    ):
        return str(folder)
    return DEFAULT_CLIP


@torch.no_grad()
def encode_prompts(
    text_model: nn.Module, text_projection: nn.Module, tokenizer: CLIPTokenizer, config: DepthCLIPConfig
) -> torch.Tensor:
    """``(n_bins, D)`` L2-normalised text features, one per distance word (prompt-ensembled).

    ``text_model`` is a transformers ``CLIPTextModel`` (its last hidden state is already through
    the final layer norm). As in OpenAI's CLIP, a prompt's feature is the hidden state at its
    end-of-text token, projected; we locate that token by id rather than relying on the config.
    """
    vocab_size = text_model.config.vocab_size
    max_length = text_model.config.max_position_embeddings
    eos = tokenizer.eos_token_id
    features = []
    for prompts in config.prompts():
        batch = tokenizer(prompts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        ids = batch["input_ids"]
        if int(ids.max()) >= vocab_size:
            raise CheckpointError(
                f"the tokenizer produces token ids up to {int(ids.max())} but the text tower has "
                f"{vocab_size} tokens: tokenizer and weights do not belong together."
            )
        hidden = text_model(input_ids=ids, attention_mask=batch["attention_mask"]).last_hidden_state
        position = (ids == eos).int().argmax(dim=-1)  # first end-of-text token (padding reuses it)
        embedded = text_projection(hidden[torch.arange(ids.shape[0]), position])
        embedded = F.normalize(embedded, dim=-1).mean(dim=0)
        features.append(F.normalize(embedded, dim=-1))
    return torch.stack(features)


# --------------------------------------------------------------------------------------------------
# Image side: CLIP-normalised images -> L2-normalised per-cell features (B, D, h, w)


class ViTDenseEncoder(nn.Module):
    """CLIP ViT patch tokens through the final (post) layer norm and the visual projection."""

    def __init__(self, vision_model: nn.Module, visual_projection: nn.Module) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.visual_projection = visual_projection
        self.patch_size = int(vision_model.config.patch_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = pixels.shape
        hidden = self.vision_model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state
        tokens = self.visual_projection(self.vision_model.post_layernorm(hidden[:, 1:]))
        grid = (height // self.patch_size, width // self.patch_size)
        return F.normalize(tokens, dim=-1).transpose(1, 2).reshape(batch, -1, *grid)


class ResNetDenseEncoder(nn.Module):
    """CLIP ResNet final grid -> joint-space features, by one of the ``resnet_features`` modes."""

    def __init__(
        self,
        resnet: ModifiedResNet,
        mode: ResNetFeatures = "released_code",
        positional: bool = False,
        text_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.resnet = resnet
        self.mode = mode
        self.positional = positional
        self.stride = 1
        if mode == "released_code":
            channels = resnet.config.embed_dim
            text_dim = text_dim or resnet.config.output_dim
            if channels % text_dim:
                raise ValueError(
                    f"released_code features keep every k-th of {channels} channels: needs a multiple "
                    f"of the text dimension {text_dim}."
                )
            self.stride = channels // text_dim

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        grid = self.resnet.feature_map(pixels)
        if self.mode == "value":
            return F.normalize(self.resnet.attnpool.dense(grid, positional=self.positional), dim=1)
        if self.mode == "attention":
            return F.normalize(self.resnet.attnpool.attend_all(grid), dim=1)
        # Released code: normalise the raw 2048-d features, then keep channels 0, 2, 4, ... (what a
        # nearest 0.5x interpolation along the channel axis does); the result is not renormalised.
        return F.normalize(grid, dim=1)[:, :: self.stride]


# --------------------------------------------------------------------------------------------------
# The model


MODEL_TYPE = "depthclip"


class DepthCLIP(PretrainedDepthModel, tags=["clip", "zero-shot", "depthclip"]):
    """Zero-shot DepthCLIP. ``forward(images)`` with images ``(B, 3, H, W)`` RGB in [0, 1], H and W
    multiples of 32, returns a ``DepthOutput`` with ``depth`` ``(B, 1, H, W)`` in metres, the
    per-cell ``bin_logits`` ``(B, n_bins, h, w)`` and ``bin_centers`` (the bin depths).

    Build it with ``from_vit`` / ``from_resnet`` / ``from_spec``; ``save_pretrained`` /
    ``from_pretrained`` / ``push_to_hub`` come from the depth-model contract. The constructor takes
    only what ``config.json`` records (the architecture of the image tower, not its weights), so a
    saved folder rebuilds the same modules before its weights are loaded. Nothing in it is
    trainable; its modules stay in eval mode even under ``.train()`` (batch-norm statistics are
    part of CLIP).
    """

    def __init__(
        self,
        depthclip: DepthCLIPConfig | dict[str, Any] | None = None,
        *,
        backbone: str = "vit",
        encoder: dict[str, Any] | None = None,
        text_dim: int | None = None,
        source: str = RANDOM,
        is_random_init: bool = True,
        model_type: str = MODEL_TYPE,
    ) -> None:
        super().__init__()
        if model_type != MODEL_TYPE:
            raise CheckpointError(
                f"config.json does not describe a DepthCLIP model (model_type {model_type!r}); load it "
                f"with the loader for that model (moa_depthclip.inference.loading.load_depth_model)"
            )
        if isinstance(depthclip, dict):
            # Folders saved before ``normalization`` existed were computed with CLIP's mean/std.
            depthclip = DepthCLIPConfig.from_dict({"normalization": "clip", **depthclip})
        self.config = config = depthclip or DepthCLIPConfig()
        self.encoder, text_dim = _build_encoder(backbone, encoder or {}, config, text_dim)
        self.backbone = backbone
        self.source = source
        self._random_init = bool(is_random_init)
        # Filled by from_vit/from_resnet (the encoded prompts) or by the saved weights.
        self.register_buffer("text_features", torch.zeros(len(config.bin_depths), text_dim))
        self.register_buffer("bin_depths", torch.tensor(config.bin_depths, dtype=torch.float32))
        mean, std = NORMALIZATIONS[config.normalization]
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def is_random_init(self) -> bool:
        """True when the CLIP weights were random (``source`` "random")."""
        return self._random_init

    @property
    def default_flip(self) -> bool:
        """``DepthCLIPConfig.flip``: the prediction path averages with the mirrored image."""
        return self.config.flip

    @classmethod
    def _with_weights(
        cls,
        encoder: nn.Module,
        text_features: torch.Tensor,
        config: DepthCLIPConfig,
        *,
        backbone: str,
        architecture: dict[str, Any],
        source: str,
        is_random_init: bool,
    ) -> DepthCLIP:
        """A DepthCLIP holding copies of ``encoder``'s weights and the encoded prompts."""
        if text_features.shape[0] != len(config.bin_depths):
            raise ValueError(f"{text_features.shape[0]} text features for {len(config.bin_depths)} bins")
        model = cls(
            config,
            backbone=backbone,
            encoder=json.loads(json.dumps(architecture, default=str)),
            text_dim=int(text_features.shape[1]),
            source=source,
            is_random_init=is_random_init,
        )
        model.encoder.load_state_dict(encoder.state_dict())
        model.text_features.copy_(text_features.detach().float())
        return model

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def from_vit(
        cls,
        source: str = DEFAULT_CLIP,
        config: DepthCLIPConfig | None = None,
        tokenizer_source: str | None = None,
        clip_config: dict[str, Any] | None = None,
    ) -> DepthCLIP:
        """DepthCLIP on a CLIP ViT: a hub id, a ``save_pretrained`` directory, an OpenAI/open_clip
        ViT checkpoint file, or ``"random"`` (ViT-B/32 shapes, or ``clip_config``).

        The tokenizer comes from ``tokenizer_source``, else from the source itself (a checkpoint
        file: its folder, see ``tokenizer_source_for``), else from ``DEFAULT_CLIP``; random
        weights without a tokenizer source use the byte-level one.
        """
        config = config or DepthCLIPConfig()
        loaded = load_clip(source, clip_config=clip_config, tokenizer_source=tokenizer_source)
        tokenizer = loaded.tokenizer
        if tokenizer is None:
            is_file = Path(source).expanduser().is_file()
            tokenizer = load_tokenizer(tokenizer_source_for(source) if is_file else DEFAULT_CLIP)
        clip = loaded.model.eval()
        text_features = encode_prompts(clip.text_model, clip.text_projection, tokenizer, config)
        encoder = ViTDenseEncoder(clip.vision_model, clip.visual_projection)
        architecture = {
            "vision_config": clip.vision_model.config.to_dict(),
            "projection_dim": clip.visual_projection.out_features,
        }
        return cls._with_weights(
            encoder,
            text_features,
            config,
            backbone="vit",
            architecture=architecture,
            source=loaded.source,
            is_random_init=loaded.is_random_init,
        )

    @classmethod
    def from_resnet(
        cls,
        source: str = DEFAULT_RN50_PATH,
        config: DepthCLIPConfig | None = None,
        tokenizer_source: str | None = None,
        architecture: ModifiedResNetConfig | None = None,
        text_config: CLIPTextConfig | None = None,
    ) -> DepthCLIP:
        """DepthCLIP on CLIP's ResNet (RN50 as published): an OpenAI ``RN50.pt`` (TorchScript archive
        or state dict), an open_clip state dict, or ``"random"`` (RN50 shapes unless
        ``architecture`` / ``text_config`` say otherwise).

        Checkpoint files carry no tokenizer: it comes from ``tokenizer_source``, else from the
        checkpoint's folder when the tokenizer files are there, else from ``DEFAULT_CLIP``
        (``tokenizer_source_for``); random weights without one use the byte-level tokenizer.
        """
        config = config or DepthCLIPConfig()
        if source == RANDOM:
            clip = random_resnet_clip(architecture, text_config)
            tokenizer = load_tokenizer(tokenizer_source) if tokenizer_source else byte_level_clip_tokenizer()
            is_random = True
        else:
            clip = load_resnet_clip(source)
            tokenizer = load_tokenizer(tokenizer_source or tokenizer_source_for(source))
            is_random = False
        text = clip.text
        text_features = encode_prompts(text.text_model, text.text_projection, tokenizer, config)
        encoder = ResNetDenseEncoder(
            clip.visual,
            config.resnet_features,
            config.resnet_positional_embedding,
            text_dim=text_features.shape[1],
        )
        return cls._with_weights(
            encoder,
            text_features,
            config,
            backbone="resnet",
            architecture={"resnet": clip.visual.config.to_dict()},
            source=source,
            is_random_init=is_random,
        )

    @classmethod
    def from_spec(
        cls, spec: str, config: DepthCLIPConfig | None = None, tokenizer_source: str | None = None
    ) -> DepthCLIP:
        """Build from a command-line model name: ``depthclip-rn50[:PATH|random]`` or
        ``depthclip-vit[:HUB_ID|DIR|FILE|random]`` (defaults: ``weights/RN50.pt``, the ViT-B/32 hub id)."""
        name, _, source = spec.partition(":")
        if name == "depthclip-rn50":
            return cls.from_resnet(source or DEFAULT_RN50_PATH, config, tokenizer_source)
        if name == "depthclip-vit":
            return cls.from_vit(source or DEFAULT_CLIP, config, tokenizer_source)
        raise ValueError(f"unknown DepthCLIP model '{spec}': use depthclip-rn50:PATH or depthclip-vit:SOURCE")

    # -- inference ---------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> DepthCLIP:
        """Keep the frozen CLIP tower in eval mode (its batch-norm statistics must not move)."""
        super().train(mode)
        self.encoder.eval()
        return self

    def describe(self) -> dict[str, Any]:
        """What produced the predictions; meant to be written next to every result."""
        return {
            "model": "depthclip",
            "backbone": self.backbone,
            "source": self.source,
            "random_init": self.is_random_init,
            "config": self.config.to_dict(),
        }

    @staticmethod
    def check_images(images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputSizeError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        height, width = images.shape[-2:]
        if height % 32 or width % 32:
            raise InputSizeError(
                f"image size {height}x{width} is not a multiple of 32: resize or pad it first "
                f"(e.g. 416x544 for NYU Depth V2)."
            )

    def dense_features(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, D, H/32, W/32)`` per-cell image features (mean/std normalisation of the config first).

        L2-normalised joint-space features, except ``released_code``: every other channel of the
        L2-normalised raw grid, as the official code compares them."""
        self.check_images(images)
        pixels = (images.float() - self.pixel_mean) / self.pixel_std
        return self.encoder(pixels)

    def bin_logits(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, n_bins, h, w)`` = logit_scale * cos(image cell, distance prompt) / temperature."""
        features = self.dense_features(images)
        cosine = torch.einsum("bdhw,kd->bkhw", features, self.text_features)
        return self.config.logit_scale * cosine / self.config.temperature

    def depth_from_logits(self, logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Expected bin depth under the softmax, bilinearly upsampled to ``size``: ``(B, 1, *size)``."""
        probabilities = logits.softmax(dim=1)
        depth = torch.einsum("bkhw,k->bhw", probabilities, self.bin_depths).unsqueeze(1)
        return F.interpolate(depth, size=size, mode="bilinear", align_corners=self.config.align_corners)

    def forward(self, images: torch.Tensor) -> DepthOutput:
        size = (images.shape[-2], images.shape[-1])
        logits = self.bin_logits(images)
        depth = self.depth_from_logits(logits, size)
        return DepthOutput(depth=depth, bin_logits=logits, bin_centers=self.bin_depths.clone())


def _build_encoder(
    backbone: str, architecture: dict[str, Any], config: DepthCLIPConfig, text_dim: int | None
) -> tuple[nn.Module, int]:
    """The image tower described by ``config.json``'s ``encoder`` entry (random weights), and the
    text dimension (default: the tower's joint-space width)."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    if backbone == "vit":
        vision_config = CLIPVisionConfig.from_dict(architecture.get("vision_config", {}))
        projection_dim = int(architecture.get("projection_dim", 512))
        projection = nn.Linear(vision_config.hidden_size, projection_dim, bias=False)
        return ViTDenseEncoder(CLIPVisionModel(vision_config), projection), text_dim or projection_dim
    if backbone == "resnet":
        resnet_config = (
            ModifiedResNetConfig.from_dict(architecture["resnet"])
            if "resnet" in architecture
            else ModifiedResNetConfig()
        )
        text_dim = text_dim or resnet_config.output_dim
        encoder = ResNetDenseEncoder(
            ModifiedResNet(resnet_config),
            config.resnet_features,
            config.resnet_positional_embedding,
            text_dim=text_dim,
        )
        return encoder, text_dim
    raise CheckpointError(f"unknown DepthCLIP backbone {backbone!r} in config.json (expected vit or resnet)")
