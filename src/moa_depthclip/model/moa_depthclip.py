"""MoA-DepthCLIP: the whole model, assembled the way the paper describes it.

    image --CLIP ViT-B/32 (frozen but blocks 8-11)--> tokens
          MoA after blocks 2, 5, 8, 11, routed with the global context vector
          taps at blocks 2, 5, 8, 11 --light decoder (+ context)--> dense features
          --hybrid head--> 128-bin expected depth, regression depth, blend --> metric depth

Construction:
* ``MoADepthCLIP.from_clip(config_or_source)`` starts from CLIP weights (hub id, local folder,
  OpenAI file, or ``"random"``) and encodes the prompt bank once with the frozen text encoder;
* ``MoADepthCLIP.from_pretrained(path_or_hub_id)`` / ``save_pretrained`` / ``push_to_hub`` load and
  store a trained model (safetensors + config.json): the depth-model contract
  (:mod:`moa_depthclip.model.contract`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPConfig

from moa_depthclip.clip_loading import check_text_features, download_hint, load_clip
from moa_depthclip.config import BackboneConfig, ModelConfig
from moa_depthclip.config_checks import check_config
from moa_depthclip.data.transforms import CLIP_MEAN, CLIP_STD
from moa_depthclip.errors import ConfigError, InputSizeError, WeightsNotFoundError
from moa_depthclip.model.backbone import CLIPViTBackbone
from moa_depthclip.model.context import SceneContext, encode_prompt_bank, prompt_texts
from moa_depthclip.model.contract import PretrainedDepthModel
from moa_depthclip.model.decoder import ProgressiveDecoder
from moa_depthclip.model.heads import HybridDepthHead
from moa_depthclip.model.moa import MixtureOfAdapters
from moa_depthclip.model.outputs import DepthOutput


@dataclass
class EncodedImage:
    taps: list[torch.Tensor]  # (B, 1 + h*w, D) after each tapped block (and its MoA), shallow to deep
    context: torch.Tensor  # (B, D) global semantic context in the vision width
    grid: tuple[int, int]  # patch grid (h, w)
    balance_loss: torch.Tensor  # mean MoA router regulariser (unweighted; 0 without routers)
    pixels: torch.Tensor  # the CLIP-normalised input image


class MoADepthCLIP(
    PretrainedDepthModel,
    tags=["clip"],
    coders={ModelConfig: (lambda config: config.to_dict(), lambda data: ModelConfig.from_dict(data))},
):
    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        config = config if config is not None else ModelConfig()
        if isinstance(config, dict):  # config.json; its "model_type" is for transformers' AutoConfig
            config = ModelConfig.from_dict({k: v for k, v in config.items() if k != "model_type"})
        self.config = config
        clip_config = _clip_config(config)
        vision = clip_config.vision_config
        num_layers = vision.num_hidden_layers
        check_config(config)  # Literal values and ranges, one-line ConfigError naming the key
        _check_layers(config, num_layers)

        self.register_buffer("pixel_mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        self.backbone = CLIPViTBackbone(vision, clip_config.projection_dim)
        width = vision.hidden_size
        self.context = SceneContext(
            num_prompts=len(config.context.templates) * len(config.context.words),
            joint_dim=clip_config.projection_dim,
            width=width,
            mode=config.context.mode,
            temperature=config.context.temperature,
        )
        moa = config.moa
        self.moa = nn.ModuleDict(
            {
                str(index): MixtureOfAdapters(
                    width,
                    num_experts=moa.num_experts,
                    rank=moa.rank,
                    context_dim=width if (moa.router_uses_context and self.context.enabled) else None,
                    spatial_kernel=moa.spatial_kernel,
                    zero_init=moa.zero_init,
                    regularizer=moa.router_regularizer,
                )
                for index in moa.layers
            }
        )
        self.tap_layers = tuple(sorted(config.decoder.tap_layers))
        self.decoder = ProgressiveDecoder(
            width, len(self.tap_layers), config.decoder, use_context=self.context.enabled
        )
        self.head = HybridDepthHead(self.decoder.out_channels, config.head)
        # Blocks after the last tap never run: they stay frozen whatever unfrozen_blocks says.
        self.backbone.set_trainable(self.unfrozen_blocks)

    # ---------------------------------------------------------------------------------------------
    # construction

    @classmethod
    def from_clip(
        cls, config: ModelConfig | str | None = None, tokenizer_source: str | None = None
    ) -> MoADepthCLIP:
        """Build from CLIP weights and encode the prompt bank.

        ``config`` is a :class:`ModelConfig` (weights named by ``config.backbone.source``) or just the
        source: a hub id such as ``"openai/clip-vit-base-patch32"``, a folder, a checkpoint file or
        ``"random"`` (default architecture). The caller's config is not modified: the model keeps a
        copy that records the CLIP architecture actually loaded and whether it was pretrained.
        """
        if isinstance(config, str):
            config = ModelConfig(backbone=BackboneConfig(source=config))
        config = copy.deepcopy(config) if config is not None else ModelConfig()
        loaded = load_clip(
            config.backbone.source,
            clip_config=config.backbone.clip_config,
            tokenizer_source=tokenizer_source,
        )
        if loaded.tokenizer is None:
            raise WeightsNotFoundError(
                f"{config.backbone.source} carries no tokenizer, which the prompt bank needs: pass "
                f"tokenizer_source (--tokenizer) pointing at a Hugging Face CLIP folder.\n{download_hint()}"
            )
        config.backbone.clip_config = loaded.model.config.to_dict()
        config.backbone.pretrained = not loaded.is_random_init
        model = cls(config)
        model.backbone.load_from_clip(loaded.model)
        texts = prompt_texts(config.context.templates, config.context.words)
        bank = check_text_features(encode_prompt_bank(loaded.model, loaded.tokenizer, texts), loaded.source)
        model.context.prompt_bank.copy_(bank)
        return model

    @property
    def unfrozen_blocks(self) -> tuple[int, ...]:
        """The backbone blocks actually trained: the configured ones up to the last tap."""
        return tuple(b for b in self.config.backbone.unfrozen_blocks if b <= self.tap_layers[-1])

    @property
    def is_random_init(self) -> bool:
        """True when the backbone started from random weights rather than pretrained CLIP."""
        return not self.config.backbone.pretrained

    # ---------------------------------------------------------------------------------------------
    # forward

    def forward(self, images: torch.Tensor) -> DepthOutput:
        """``images``: (B, 3, H, W) RGB in [0, 1], H and W multiples of 32 -> metric depth (B, 1, H, W)."""
        encoded = self.encode(images)
        features = self.decoder(encoded.taps, encoded.context, encoded.grid, encoded.pixels)
        head = self.head(features)
        size = tuple(images.shape[-2:])
        return DepthOutput(
            depth=_upsample(head["depth"], size),
            depth_bins=_upsample(head["depth_bins"], size),
            depth_reg=_upsample(head["depth_reg"], size),
            bin_logits=head["bin_logits"],
            bin_centers=self.head.centers,
            aux_loss=encoded.balance_loss * _router_weight(self.config),
        )

    def encode(self, images: torch.Tensor) -> EncodedImage:
        """Backbone with MoA: the token maps at each tapped block, the context vector, the grid."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputSizeError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        pixels = (images.to(self.pixel_mean.dtype) - self.pixel_mean) / self.pixel_std
        tokens, grid = self.backbone.embed(pixels)
        batch = tokens.shape[0]

        static_context = self.context.mode == "static"
        context = self.context(None, batch) if static_context else None
        image_context = self.context.mode == "image"
        taps: list[torch.Tensor] = []
        balance = tokens.new_zeros(())
        for index, block in enumerate(self.backbone.blocks):
            tokens = block(tokens, None)
            key = str(index)
            if key in self.moa:
                if image_context:
                    context = self.context(self.backbone.joint_embedding(tokens), batch)
                tokens, block_balance = self.moa[key](tokens, context, grid)
                balance = balance + block_balance
            if index in self.tap_layers:
                taps.append(tokens)
            if index == self.tap_layers[-1]:
                break  # later blocks would change no tap
        if image_context and context is None:  # no MoA layer: the decoder's context from the last tap
            context = self.context(self.backbone.joint_embedding(tokens), batch)
        return EncodedImage(
            taps=taps, context=context, grid=grid, balance_loss=balance / max(1, len(self.moa)), pixels=pixels
        )

    # ---------------------------------------------------------------------------------------------
    # parameters

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by group (the optimizer gives the backbone its own learning rate)."""
        groups: dict[str, list[nn.Parameter]] = {
            "moa": list(self.moa.parameters()),
            "backbone_blocks": [p for p in self.backbone.parameters() if p.requires_grad],
            "context": list(self.context.parameters()),
            "decoder": list(self.decoder.parameters()),
            "heads": list(self.head.parameters()),
        }
        return {name: [p for p in params if p.requires_grad] for name, params in groups.items()}

    def parameter_report(self, image_size: tuple[int, int] = (224, 224)) -> dict[str, Any]:
        """Total/trainable parameter counts, trainable by group, and the token grid for a size."""
        grid = self.backbone.token_grid(*image_size)
        groups = {name: sum(p.numel() for p in params) for name, params in self.parameter_groups().items()}
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(groups.values())
        return {
            "total_parameters": total,
            "trainable_parameters": trainable,
            "frozen_parameters": total - trainable,
            "trainable_fraction": trainable / total,
            "trainable_by_group": groups,
            "input_size": list(image_size),
            "token_grid": list(grid),
            "tokens": grid[0] * grid[1] + 1,
            "decoder_output": [image_size[0] // self.decoder.stride, image_size[1] // self.decoder.stride],
            "moa_layers": list(self.config.moa.layers),
            "tap_layers": list(self.tap_layers),
            "unfrozen_blocks": list(self.unfrozen_blocks),
            "random_init": self.is_random_init,
        }


def _check_layers(config: ModelConfig, num_layers: int) -> None:
    """Every MoA layer, tap and unfrozen block must exist and be able to change the output."""
    taps = config.decoder.tap_layers
    if not taps:
        raise ConfigError("model.decoder.tap_layers is empty: the decoder needs at least one tapped block")
    named = (("model.moa.layers", config.moa.layers), ("model.decoder.tap_layers", taps))
    named += (("model.backbone.unfrozen_blocks", config.backbone.unfrozen_blocks),)
    for setting, layers in named:
        for index in layers:
            if not 0 <= index < num_layers:
                raise ConfigError(f"{setting}: block {index} does not exist (the backbone has {num_layers})")
    late = [index for index in config.moa.layers if index > max(taps)]
    if late:
        raise ConfigError(
            f"model.moa.layers: block(s) {late} come after the last tapped block {max(taps)}, so they "
            "could not change the prediction; remove them or tap a later block (model.decoder.tap_layers)"
        )


def _router_weight(config: ModelConfig) -> float:
    """Weight of the router regulariser the MoA modules report (``aux_loss``)."""
    moa = config.moa
    weights = {"load_balance": moa.load_balance_weight, "entropy": moa.entropy_weight}
    return weights.get(moa.router_regularizer, 0.0)


def _clip_config(config: ModelConfig) -> CLIPConfig:
    if config.backbone.clip_config is None:
        return CLIPConfig()  # ViT-B/32 shapes
    return CLIPConfig.from_dict(config.backbone.clip_config)


def _upsample(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if depth.shape[-2:] == size:
        return depth
    return F.interpolate(depth, size=size, mode="bilinear", align_corners=False)
