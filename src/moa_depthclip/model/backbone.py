"""The CLIP ViT image encoder, opened up so that adapters can sit between its blocks.

The modules are the transformers ``CLIPVisionModel`` ones (same names, same weights), so pretrained
weights load unchanged; what this wrapper adds is block-by-block access, position embeddings for
any input that is a multiple of the patch size, and selective unfreezing.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import CLIPModel, CLIPVisionConfig
from transformers.models.clip.modeling_clip import CLIPEncoderLayer, CLIPVisionEmbeddings

from moa_depthclip.errors import InputSizeError


class CLIPViTBackbone(nn.Module):
    def __init__(self, config: CLIPVisionConfig, projection_dim: int) -> None:
        super().__init__()
        config._attn_implementation = "sdpa"
        self.config = config
        self.patch_size = config.patch_size
        self.embeddings = CLIPVisionEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.blocks = nn.ModuleList(CLIPEncoderLayer(config) for _ in range(config.num_hidden_layers))
        # Used only to place the CLS token in CLIP's joint space (image-conditioned context).
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.visual_projection = nn.Linear(config.hidden_size, projection_dim, bias=False)

    @property
    def width(self) -> int:
        return self.config.hidden_size

    def load_from_clip(self, clip: CLIPModel) -> None:
        """Copy the image tower of a transformers ``CLIPModel`` (exact, strict)."""
        vision = clip.vision_model
        self.embeddings.load_state_dict(vision.embeddings.state_dict())
        self.pre_layrnorm.load_state_dict(vision.pre_layrnorm.state_dict())
        for block, source in zip(self.blocks, vision.encoder.layers, strict=True):
            block.load_state_dict(source.state_dict())
        self.post_layernorm.load_state_dict(vision.post_layernorm.state_dict())
        self.visual_projection.load_state_dict(clip.visual_projection.state_dict())

    def set_trainable(self, unfrozen_blocks: tuple[int, ...]) -> None:
        """Freeze everything, then unfreeze the listed blocks (the paper: the last four)."""
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        for index in unfrozen_blocks:
            if not 0 <= index < len(self.blocks):
                raise ValueError(f"cannot unfreeze block {index}: the backbone has {len(self.blocks)} blocks")
            for parameter in self.blocks[index].parameters():
                parameter.requires_grad_(True)

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        if height % self.patch_size or width % self.patch_size or height <= 0 or width <= 0:
            raise InputSizeError(
                f"input size {height}x{width} is not a multiple of the patch size {self.patch_size}: "
                f"resize or pad the image (e.g. to {_round_to(height, self.patch_size)}x"
                f"{_round_to(width, self.patch_size)}) first."
            )
        return height // self.patch_size, width // self.patch_size

    def embed(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patchify, add (interpolated) position embeddings, pre-LN: (B, 1 + h*w, D) and the grid."""
        height, width = pixel_values.shape[-2:]
        grid = self.token_grid(height, width)
        native = self.config.image_size
        tokens = self.embeddings(pixel_values, interpolate_pos_encoding=(height, width) != (native, native))
        return self.pre_layrnorm(tokens), grid

    def joint_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLS token -> CLIP joint space (post-LN + visual projection)."""
        return self.visual_projection(self.post_layernorm(tokens[:, 0]))


def _round_to(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)
