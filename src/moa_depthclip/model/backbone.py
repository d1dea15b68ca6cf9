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

from moa_depthclip.data.transforms import round_to_multiple
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
        # Interpolated position embeddings for the last grid seen (see ``embed``); not state.
        self._position_cache_key: tuple | None = None
        self._position_cache: torch.Tensor | None = None

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
                f"resize or pad the image (e.g. to {round_to_multiple(height, self.patch_size)}x"
                f"{round_to_multiple(width, self.patch_size)}) first."
            )
        return height // self.patch_size, width // self.patch_size

    def embed(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patchify, add (interpolated) position embeddings, pre-LN: (B, 1 + h*w, D) and the grid."""
        height, width = pixel_values.shape[-2:]
        grid = self.token_grid(height, width)
        if self._position_cache_usable():
            tokens = self._embed_with_cached_positions(pixel_values, grid)
        else:
            native = self.config.image_size
            tokens = self.embeddings(
                pixel_values, interpolate_pos_encoding=(height, width) != (native, native)
            )
        return self.pre_layrnorm(tokens), grid

    def _position_cache_usable(self) -> bool:
        """Reuse interpolated position embeddings only when nothing can differentiate through them
        and the graph is not being traced/compiled (an exported graph must resize for any input)."""
        weight = self.embeddings.position_embedding.weight
        if weight.requires_grad and torch.is_grad_enabled():
            return False
        if weight.is_inference():
            # Built under torch.inference_mode(): such tensors have no version counter, so a later
            # in-place load could not be told from the cached table; resize at every forward.
            return False
        return not (torch.jit.is_tracing() or torch.compiler.is_compiling())

    def _embed_with_cached_positions(self, pixel_values: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """transformers' ``CLIPVisionEmbeddings.forward`` with the position table cached per grid.

        The bicubic resize of the 7x7 table is the same for every image of a size; redoing it at
        every forward costs about as much as a MoA module. The cache key includes the weight's
        version counter, so an optimizer step or a ``load_state_dict`` invalidates it.
        """
        embeddings = self.embeddings
        weight = embeddings.position_embedding.weight
        key = (grid, weight._version, weight.data_ptr(), weight.device, weight.dtype)
        if self._position_cache_key != key:
            with torch.no_grad():
                probe = weight.new_empty(1, 1 + grid[0] * grid[1], weight.shape[-1])
                height, width = grid[0] * self.patch_size, grid[1] * self.patch_size
                native = self.config.image_size
                if (height, width) == (native, native):
                    table = embeddings.position_embedding(embeddings.position_ids)
                else:
                    table = embeddings.interpolate_pos_encoding(probe, height, width)
            self._position_cache_key, self._position_cache = key, table
        patches = embeddings.patch_embedding(pixel_values.to(dtype=embeddings.patch_embedding.weight.dtype))
        patches = patches.flatten(2).transpose(1, 2)
        cls_token = embeddings.class_embedding.expand(patches.shape[0], 1, -1)
        return torch.cat([cls_token, patches], dim=1) + self._position_cache

    def joint_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """CLS token -> CLIP joint space (post-LN + visual projection)."""
        return self.visual_projection(self.post_layernorm(tokens[:, 0]))
