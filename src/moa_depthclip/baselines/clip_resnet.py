"""CLIP's modified ResNet image encoder (RN50 and relatives), with dense features for DepthCLIP.

No maintained library offers this network without torchvision, so it is written out here. The
parameter and buffer names follow OpenAI's checkpoints (without the ``visual.`` prefix), so an
OpenAI or open_clip state dict loads with ``load_state_dict`` after stripping that prefix.

What differs from a torchvision ResNet (and why the names look the way they do):

* stem of three 3x3 convolutions (widths w/2, w/2, w; the first one strided) and a 2x2 average
  pool instead of one 7x7 convolution and a max pool;
* anti-aliased downsampling: strided blocks keep every convolution at stride 1 and average-pool
  (kernel = stride) after the 3x3 convolution; the shortcut average-pools before its 1x1 convolution;
* an attention-pooling head instead of global average pooling: the mean of the final feature map is
  prepended as a query token, a learned positional embedding is added to all tokens, and one
  multi-head attention step (query = the mean token) followed by ``c_proj`` gives the image
  embedding in CLIP's joint space.

``dense_features`` gives one joint-space feature per cell of the final grid the way MaskCLIP does:
every spatial token, without positional embedding, goes through the attention pool's value
projection and output projection (an attention step in which each token attends only to itself), so
that it lands in the same space as the pooled embedding and the text features. ``attend_all`` is
the attention pool with every cell as a query, its positional embedding resized bilinearly with
``align_corners=True`` as in the attention pool of DepthCLIP's code.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModelWithProjection
from transformers.utils import logging as hf_logging

from moa_depthclip.clip_loading import convert_openai_text_tower, read_checkpoint_state_dict
from moa_depthclip.errors import CheckpointError, WeightsNotFoundError

# OpenAI's published RN50 checkpoint (a TorchScript archive). The hex string is its SHA-256.
RN50_SHA256 = "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"
RN50_URL = f"https://openaipublic.azureedge.net/clip/models/{RN50_SHA256}/RN50.pt"
DEFAULT_RN50_PATH = "weights/RN50.pt"


@dataclass
class ModifiedResNetConfig:
    """Shape of a CLIP modified ResNet. The defaults are OpenAI's RN50 image encoder.

    ``heads`` cannot be read from a state dict (it does not change any tensor shape); OpenAI's rule
    is ``width * 32 // 64``. It only affects the pooled embedding, not the dense features.
    """

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    width: int = 64
    output_dim: int = 1024
    heads: int = 32
    input_resolution: int = 224

    @property
    def embed_dim(self) -> int:
        """Channels of the final feature map (bottleneck expansion 4, width doubled 3 times)."""
        return self.width * 32

    @property
    def grid_size(self) -> int:
        """Side of the final feature grid at the pretraining resolution (total stride 32)."""
        return self.input_resolution // 32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModifiedResNetConfig:
        data = dict(data)
        data["layers"] = tuple(data.get("layers", cls.layers))
        return cls(**data)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3, 1x1; expansion 4) with average-pool downsampling."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        outplanes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, outplanes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.relu3 = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride > 1 or inplanes != outplanes:
            # The names "-1", "0", "1" reproduce OpenAI's keys (downsample.0.weight, downsample.1.*).
            self.downsample = nn.Sequential()
            self.downsample.add_module("-1", nn.AvgPool2d(stride) if stride > 1 else nn.Identity())
            self.downsample.add_module("0", nn.Conv2d(inplanes, outplanes, 1, bias=False))
            self.downsample.add_module("1", nn.BatchNorm2d(outplanes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        return self.relu3(out + identity)


class AttentionPool2d(nn.Module):
    """CLIP's attention pooling: the mean token queries the positional-embedded grid tokens."""

    def __init__(self, grid_size: int, embed_dim: int, num_heads: int, output_dim: int) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(
            torch.randn(grid_size * grid_size + 1, embed_dim) / embed_dim**0.5
        )
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.num_heads = num_heads

    def positional_embedding_for(
        self, height: int, width: int, mode: str = "bicubic", align_corners: bool = False
    ) -> torch.Tensor:
        """Positional embedding ``(1 + height*width, C)`` for a ``height x width`` grid.

        The spatial part is resized (``mode``; bicubic without corner alignment by default, as
        transformers does for ViTs) when the grid differs from the pretraining grid; the mean
        token's embedding is kept as is.
        """
        embedding = self.positional_embedding
        side = math.isqrt(embedding.shape[0] - 1)
        if (height, width) == (side, side):
            return embedding
        spatial = embedding[1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        spatial = F.interpolate(spatial, size=(height, width), mode=mode, align_corners=align_corners)
        spatial = spatial.permute(0, 2, 3, 1).reshape(height * width, -1)
        return torch.cat([embedding[:1], spatial], dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` feature map -> ``(B, output_dim)`` pooled embedding."""
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, hw, C)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + self.positional_embedding_for(height, width).to(tokens.dtype)
        head_dim = channels // self.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, t.shape[1], self.num_heads, head_dim).transpose(1, 2)

        query = split(self.q_proj(tokens[:, :1]))
        key = split(self.k_proj(tokens))
        value = split(self.v_proj(tokens))
        pooled = F.scaled_dot_product_attention(query, key, value)  # (B, heads, 1, head_dim)
        return self.c_proj(pooled.transpose(1, 2).reshape(batch, channels))

    def attend_all(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` -> ``(B, output_dim, h, w)``: the attention step with *every* token as a query.

        The pooled embedding is the mean token's row of this computation; the spatial rows are
        the per-location counterpart (each location attends over the whole grid, mean token
        included). The positional embedding is resized bilinearly with ``align_corners=True``, as
        in the attention pool of DepthCLIP's code.
        """
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        position = self.positional_embedding_for(height, width, mode="bilinear", align_corners=True)
        tokens = tokens + position.to(tokens.dtype)
        head_dim = channels // self.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, t.shape[1], self.num_heads, head_dim).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            split(self.q_proj(tokens)), split(self.k_proj(tokens)), split(self.v_proj(tokens))
        )
        out = self.c_proj(attended.transpose(1, 2).reshape(batch, -1, channels))[:, 1:]
        return out.transpose(1, 2).reshape(batch, -1, height, width)

    def dense(self, x: torch.Tensor, positional: bool = False) -> torch.Tensor:
        """``(B, C, h, w)`` feature map -> ``(B, output_dim, h, w)``: value + output projection per token.

        By default the raw features are projected (MaskCLIP). With ``positional`` the spatial
        positional embedding (resized bicubically) is added first, as the tokens enter the
        attention: a variant, not MaskCLIP.
        """
        batch, _, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, hw, C)
        if positional:
            tokens = tokens + self.positional_embedding_for(height, width)[1:].to(tokens.dtype)
        features = self.c_proj(self.v_proj(tokens))
        return features.transpose(1, 2).reshape(batch, -1, height, width)


class ModifiedResNet(nn.Module):
    """CLIP's ResNet image encoder. Takes CLIP-normalised images; any size that is a multiple of 32."""

    def __init__(self, config: ModifiedResNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ModifiedResNetConfig()
        width = config.width
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)

        self._inplanes = width
        self.layer1 = self._make_layer(width, config.layers[0])
        self.layer2 = self._make_layer(width * 2, config.layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, config.layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, config.layers[3], stride=2)
        self.attnpool = AttentionPool2d(config.grid_size, config.embed_dim, config.heads, config.output_dim)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        layers = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, width*32, H/32, W/32)``: the trunk before the attention pool."""
        x = x.to(self.conv1.weight.dtype)
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        x = self.avgpool(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global CLIP image embedding ``(B, output_dim)`` (not normalised)."""
        return self.attnpool(self.feature_map(x))

    def dense_features(self, x: torch.Tensor, positional: bool = False) -> torch.Tensor:
        """Per-cell joint-space features ``(B, output_dim, H/32, W/32)`` (not normalised)."""
        return self.attnpool.dense(self.feature_map(x), positional=positional)


def _count_indices(state: dict[str, torch.Tensor], prefix: str) -> int:
    indices = {key[len(prefix) :].split(".")[0] for key in state if key.startswith(prefix)}
    return len({int(index) for index in indices if index.isdigit()})


def config_from_state_dict(state: dict[str, torch.Tensor], prefix: str = "visual.") -> ModifiedResNetConfig:
    """Infer the architecture from tensor shapes (``heads`` by OpenAI's ``width * 32 // 64`` rule).

    Raises ``KeyError`` when a required tensor is absent; callers turn that into a user-facing error.
    """
    width = state[f"{prefix}layer1.0.conv1.weight"].shape[0]
    layers = tuple(_count_indices(state, f"{prefix}layer{index}.") for index in (1, 2, 3, 4))
    positions = state[f"{prefix}attnpool.positional_embedding"].shape[0]
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise ValueError(f"attnpool.positional_embedding has {positions} rows: not a square grid + 1.")
    return ModifiedResNetConfig(
        layers=layers,  # type: ignore[arg-type]
        width=width,
        output_dim=state[f"{prefix}attnpool.c_proj.weight"].shape[0],
        heads=max(1, width * 32 // 64),
        input_resolution=grid * 32,
    )


def visual_state_dict(state: dict[str, torch.Tensor], prefix: str = "visual.") -> dict[str, torch.Tensor]:
    """The image-encoder tensors of a full CLIP state dict, prefix removed, as float32."""
    return {
        key[len(prefix) :]: value.float() if value.is_floating_point() else value
        for key, value in state.items()
        if key.startswith(prefix)
    }


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


# --------------------------------------------------------------------------------------------------
# The whole ResNet CLIP (image + text towers) from OpenAI / open_clip checkpoint files


@dataclass
class ResNetCLIP:
    """A ResNet CLIP: our ``ModifiedResNet`` image tower and a transformers text tower."""

    visual: ModifiedResNet
    text: CLIPTextModelWithProjection
    logit_scale: float | None = None


def rn50_text_config(projection_dim: int = 1024) -> CLIPTextConfig:
    """The text tower of OpenAI's RN50 (width 512, 8 heads, 12 layers, 77 tokens, 49,408 words)."""
    return CLIPTextConfig(
        hidden_size=512,
        intermediate_size=2048,
        num_hidden_layers=12,
        num_attention_heads=8,
        vocab_size=49408,
        max_position_embeddings=77,
        projection_dim=projection_dim,
        hidden_act="quick_gelu",
    )


def text_config_from_openai_state_dict(state: dict[str, torch.Tensor]) -> CLIPTextConfig:
    """Infer the text tower's shape from an OpenAI-layout state dict (heads by CLIP's width/64 rule)."""
    width = state["ln_final.weight"].shape[0]
    vocab_size = state["token_embedding.weight"].shape[0]
    return CLIPTextConfig(
        # CLIP's vocabulary ends with <|startoftext|>, <|endoftext|> (49406, 49407 for 49,408 words).
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        hidden_size=width,
        intermediate_size=state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        num_hidden_layers=_count_indices(state, "transformer.resblocks."),
        num_attention_heads=max(1, width // 64),
        vocab_size=vocab_size,
        max_position_embeddings=state["positional_embedding"].shape[0],
        projection_dim=state["text_projection"].shape[1],
        hidden_act="quick_gelu",
    )


def rn50_download_hint(path: str | os.PathLike[str] = DEFAULT_RN50_PATH) -> str:
    """What to download and where to put it, shown whenever the RN50 checkpoint is missing."""
    return (
        f"Download OpenAI's CLIP RN50 checkpoint on a machine with internet access:\n"
        f"    curl -L -o {path} {RN50_URL}\n"
        f"(the file `clip.load('RN50')` fetches; SHA-256 {RN50_SHA256}), copy it here and pass its "
        f"path, e.g. --model depthclip-rn50:{path}. An open_clip RN50 state dict works too. "
        f"DepthCLIP also needs CLIP's tokenizer files once, next to the checkpoint:\n"
        f"    huggingface-cli download openai/clip-vit-base-patch32 vocab.json merges.txt "
        f"--local-dir {Path(path).parent}\n"
        f"To run without pretrained weights use depthclip-rn50:random (outputs are then marked as "
        f"coming from a randomly initialised model)."
    )


def load_resnet_clip(path: str | os.PathLike[str]) -> ResNetCLIP:
    """Load a ResNet CLIP from an OpenAI file (TorchScript archive or state dict) or an open_clip state dict.

    Half-precision checkpoints are converted to float32. Raises ``WeightsNotFoundError`` when the
    file is missing and ``CheckpointError`` when it is unreadable or not a ResNet CLIP.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"CLIP ResNet checkpoint not found: {path} does not exist.\n{rn50_download_hint(path)}"
        )
    state = read_checkpoint_state_dict(path)
    return resnet_clip_from_state_dict(state, origin=str(path))


def resnet_clip_from_state_dict(state: dict[str, torch.Tensor], origin: str = "state dict") -> ResNetCLIP:
    """Build both towers from an OpenAI-layout state dict (``visual.*`` + text tower keys)."""
    if "visual.layer1.0.conv1.weight" not in state:
        kind = (
            "a ViT CLIP (use depthclip-vit with this file)"
            if "visual.transformer.resblocks.0.ln_1.weight" in state
            else "not a CLIP checkpoint"
        )
        raise CheckpointError(
            f"{origin} is {kind}: expected OpenAI/open_clip ResNet keys such as 'visual.layer1.0.conv1.weight'."
        )
    try:
        config = config_from_state_dict(state)
        text_config = text_config_from_openai_state_dict(state)
        text_state = convert_openai_text_tower(state)
    except (KeyError, ValueError, IndexError) as error:
        raise CheckpointError(f"{origin}: incomplete CLIP ResNet checkpoint ({error!r}).") from error
    logit_scale = text_state.pop("logit_scale", None)
    visual = ModifiedResNet(config)
    try:
        visual.load_state_dict(visual_state_dict(state), strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"{origin}: image-tower weights do not fit the inferred architecture {config}: "
            f"{str(error).splitlines()[0]}"
        ) from error
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        text = CLIPTextModelWithProjection(text_config)
    finally:
        hf_logging.set_verbosity(verbosity)
    text_state = {key: value.float() for key, value in text_state.items()}
    missing, unexpected = text.load_state_dict(text_state, strict=False)
    missing = [key for key in missing if not key.endswith("position_ids")]
    if missing or unexpected:
        raise CheckpointError(
            f"{origin}: text-tower weights do not fit the inferred architecture "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})."
        )
    scale = float(logit_scale.float().exp()) if logit_scale is not None else None
    return ResNetCLIP(visual.eval(), text.eval(), scale)


def random_resnet_clip(
    config: ModifiedResNetConfig | None = None, text_config: CLIPTextConfig | None = None
) -> ResNetCLIP:
    """Randomly initialised ResNet CLIP (RN50 shapes by default), for offline runs and tests."""
    config = config or ModifiedResNetConfig()
    text_config = text_config or rn50_text_config(config.output_dim)
    if text_config.projection_dim != config.output_dim:
        raise ValueError(
            f"text projection_dim {text_config.projection_dim} != image output_dim {config.output_dim}"
        )
    return ResNetCLIP(ModifiedResNet(config).eval(), CLIPTextModelWithProjection(text_config).eval())


def to_openai_state_dict(clip: ResNetCLIP) -> dict[str, torch.Tensor]:
    """Both towers in OpenAI's key layout (the inverse of ``resnet_clip_from_state_dict``).

    Used to write checkpoints in the published format (tests, conversion tools).
    """
    out = {f"visual.{key}": value for key, value in clip.visual.state_dict().items()}
    text = clip.text.text_model
    out["token_embedding.weight"] = text.embeddings.token_embedding.weight
    out["positional_embedding"] = text.embeddings.position_embedding.weight
    out["ln_final.weight"] = text.final_layer_norm.weight
    out["ln_final.bias"] = text.final_layer_norm.bias
    out["text_projection"] = clip.text.text_projection.weight.t()
    for index, layer in enumerate(text.encoder.layers):
        prefix = f"transformer.resblocks.{index}"
        attn = layer.self_attn
        out[f"{prefix}.attn.in_proj_weight"] = torch.cat(
            [attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]
        )
        out[f"{prefix}.attn.in_proj_bias"] = torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias])
        pairs = {
            "attn.out_proj": attn.out_proj,
            "ln_1": layer.layer_norm1,
            "ln_2": layer.layer_norm2,
            "mlp.c_fc": layer.mlp.fc1,
            "mlp.c_proj": layer.mlp.fc2,
        }
        for name, module in pairs.items():
            out[f"{prefix}.{name}.weight"] = module.weight
            out[f"{prefix}.{name}.bias"] = module.bias
    scale = clip.logit_scale if clip.logit_scale is not None else 1 / 0.07
    out["logit_scale"] = torch.tensor(math.log(scale))
    return {key: value.detach().clone().contiguous() for key, value in out.items()}
