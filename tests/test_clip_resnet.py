"""CLIP's modified ResNet: architecture against independent functional references, and the loaders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPTextConfig

from moa_depthclip.baselines.clip_resnet import (
    RN50_URL,
    ModifiedResNet,
    ModifiedResNetConfig,
    ResNetCLIP,
    config_from_state_dict,
    count_parameters,
    load_resnet_clip,
    random_resnet_clip,
    to_openai_state_dict,
)
from moa_depthclip.errors import CheckpointError, WeightsNotFoundError

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning"
)  # torch.jit is deprecated, RN50.pt is one

TINY = ModifiedResNetConfig(layers=(1, 2, 1, 1), width=8, output_dim=24, heads=4, input_resolution=64)
TINY_TEXT = CLIPTextConfig(
    hidden_size=64,  # one head: a checkpoint's head count follows CLIP's width / 64 rule
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=1,
    vocab_size=520,
    max_position_embeddings=40,
    projection_dim=24,
    hidden_act="quick_gelu",
    bos_token_id=512,
    eos_token_id=513,
    pad_token_id=513,
)


def randomise_batch_norm(module: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics so the references really test them."""
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            n = layer.num_features
            layer.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            layer.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            layer.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            layer.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)


def tiny_resnet(seed: int = 0) -> ModifiedResNet:
    torch.manual_seed(seed)
    model = ModifiedResNet(TINY).eval()
    randomise_batch_norm(model, seed)
    return model


def tiny_clip(seed: int = 0) -> ResNetCLIP:
    torch.manual_seed(seed)
    clip = random_resnet_clip(TINY, TINY_TEXT)
    randomise_batch_norm(clip.visual, seed)
    clip.logit_scale = 42.0
    return clip


# -- independent functional reference of the trunk ----------------------------------------------------


def _conv_bn(
    x: torch.Tensor, s: dict[str, torch.Tensor], conv: str, bn: str, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    x = F.conv2d(x, s[f"{conv}.weight"], stride=stride, padding=padding)
    return F.batch_norm(
        x, s[f"{bn}.running_mean"], s[f"{bn}.running_var"], s[f"{bn}.weight"], s[f"{bn}.bias"]
    )


def reference_trunk(s: dict[str, torch.Tensor], layers: tuple[int, ...], x: torch.Tensor) -> torch.Tensor:
    """CLIP's ResNet trunk written as plain functional calls from the state dict."""
    x = F.relu(_conv_bn(x, s, "conv1", "bn1", stride=2, padding=1))
    x = F.relu(_conv_bn(x, s, "conv2", "bn2", padding=1))
    x = F.relu(_conv_bn(x, s, "conv3", "bn3", padding=1))
    x = F.avg_pool2d(x, 2)
    for stage, blocks in enumerate(layers, start=1):
        for block in range(blocks):
            p = f"layer{stage}.{block}"
            stride = 2 if (stage > 1 and block == 0) else 1
            out = F.relu(_conv_bn(x, s, f"{p}.conv1", f"{p}.bn1"))
            out = F.relu(_conv_bn(out, s, f"{p}.conv2", f"{p}.bn2", padding=1))
            if stride > 1:
                out = F.avg_pool2d(out, stride)
            out = _conv_bn(out, s, f"{p}.conv3", f"{p}.bn3")
            shortcut = x
            if f"{p}.downsample.0.weight" in s:
                shortcut = F.avg_pool2d(x, stride) if stride > 1 else x
                shortcut = _conv_bn(shortcut, s, f"{p}.downsample.0", f"{p}.downsample.1")
            x = F.relu(out + shortcut)
    return x


def reference_tokens(
    pool: nn.Module, grid: torch.Tensor, mode: str = "bicubic", align_corners: bool = False
) -> torch.Tensor:
    """``(hw+1, B, C)`` sequence-first tokens: mean token first, resized positional embedding added."""
    b, c, h, w = grid.shape
    tokens = grid.reshape(b, c, h * w).permute(2, 0, 1)
    tokens = torch.cat([tokens.mean(dim=0, keepdim=True), tokens], dim=0)
    pos = pool.positional_embedding.detach()
    side = math.isqrt(pos.shape[0] - 1)
    spatial = pos[1:].t().reshape(1, c, side, side)
    if (h, w) != (side, side):
        spatial = F.interpolate(spatial, size=(h, w), mode=mode, align_corners=align_corners)
    pos = torch.cat([pos[:1], spatial.reshape(c, h * w).t()], dim=0)
    return tokens + pos[:, None, :]


def reference_attention(pool: nn.Module, tokens: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """torch's own multi-head attention with the pool's separate q/k/v projections and c_proj."""
    out, _ = F.multi_head_attention_forward(
        query=query,
        key=tokens,
        value=tokens,
        embed_dim_to_check=tokens.shape[-1],
        num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight,
        k_proj_weight=pool.k_proj.weight,
        v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None,
        in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None,
        bias_v=None,
        add_zero_attn=False,
        dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight,
        out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True,
        training=False,
        need_weights=False,
    )
    return out


# -- architecture ------------------------------------------------------------------------------------


def test_rn50_parameter_count_matches_published_size() -> None:
    with torch.device("meta"):
        model = ModifiedResNet(ModifiedResNetConfig())  # RN50: (3, 4, 6, 3), width 64, 1024-d, 32 heads
    count = count_parameters(model)
    assert count == 38_316_896
    assert round(count / 1e6, 1) == 38.3  # CLIP paper: RN50 image encoder 38.3M


def test_openai_key_names() -> None:
    keys = set(ModifiedResNet(TINY).state_dict())
    for key in (
        "conv1.weight",
        "bn3.running_var",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.num_batches_tracked",
        "attnpool.positional_embedding",
        "attnpool.q_proj.weight",
        "attnpool.c_proj.bias",
    ):
        assert key in keys


@torch.no_grad()
@pytest.mark.parametrize("size", [(64, 64), (96, 128)])
def test_trunk_matches_functional_reference(size: tuple[int, int]) -> None:
    model = tiny_resnet()
    x = torch.randn(2, 3, *size)
    expected = reference_trunk(model.state_dict(), TINY.layers, x)
    got = model.feature_map(x)
    assert got.shape == (2, TINY.embed_dim, size[0] // 32, size[1] // 32)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("size", [(64, 64), (96, 128)])
def test_pooled_embedding_matches_torch_attention(size: tuple[int, int]) -> None:
    model = tiny_resnet()
    x = torch.randn(2, 3, *size)
    grid = model.feature_map(x)
    tokens = reference_tokens(model.attnpool, grid)
    expected = reference_attention(model.attnpool, tokens, tokens[:1])[0]
    torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_dense_value_features_formula() -> None:
    """MaskCLIP (the default): the raw grid through v_proj and c_proj, no positional embedding."""
    model = tiny_resnet()
    x = torch.randn(2, 3, 96, 128)
    grid = model.feature_map(x)
    pool = model.attnpool
    raw = grid.flatten(2).transpose(1, 2)
    value = raw @ pool.v_proj.weight.t() + pool.v_proj.bias
    expected_raw = (value @ pool.c_proj.weight.t() + pool.c_proj.bias).transpose(1, 2).reshape(2, -1, 3, 4)
    torch.testing.assert_close(model.dense_features(x), expected_raw, rtol=1e-4, atol=1e-5)
    # The variant with the (bicubically resized) positional embedding added first.
    tokens = reference_tokens(pool, grid)[1:]  # (hw, B, C) spatial tokens with positional embedding
    value = tokens @ pool.v_proj.weight.t() + pool.v_proj.bias
    expected = (value @ pool.c_proj.weight.t() + pool.c_proj.bias).permute(1, 2, 0).reshape(2, -1, 3, 4)
    torch.testing.assert_close(model.dense_features(x, positional=True), expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(expected, expected_raw, atol=1e-3)


@torch.no_grad()
def test_attend_all_matches_torch_attention() -> None:
    model = tiny_resnet()
    grid = model.feature_map(torch.randn(1, 3, 96, 128))
    # DepthCLIP's attention pool: spatial positional embedding resized bilinearly, corners aligned.
    tokens = reference_tokens(model.attnpool, grid, mode="bilinear", align_corners=True)
    expected = reference_attention(model.attnpool, tokens, tokens)[1:].permute(1, 2, 0).reshape(1, -1, 3, 4)
    torch.testing.assert_close(model.attnpool.attend_all(grid), expected, rtol=1e-4, atol=1e-5)


def test_config_inferred_from_state_dict() -> None:
    state = {f"visual.{k}": v for k, v in ModifiedResNet(TINY).state_dict().items()}
    inferred = config_from_state_dict(state)
    assert inferred.layers == TINY.layers
    assert (inferred.width, inferred.output_dim, inferred.input_resolution) == (8, 24, 64)
    assert inferred.heads == 8 * 32 // 64
    assert ModifiedResNetConfig.from_dict(inferred.to_dict()) == inferred


# -- checkpoint files ---------------------------------------------------------------------------------


class _Holder(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def save_torchscript_archive(state: dict[str, torch.Tensor], path: Path) -> None:
    """A TorchScript archive whose state_dict has exactly the given (OpenAI) key names, as RN50.pt does."""
    root = _Holder()
    for key, value in state.items():
        *parents, leaf = key.split(".")
        module = root
        for name in parents:
            if name not in module._modules:
                module.add_module(name, _Holder())
            module = module._modules[name]
        module.register_buffer(leaf, value)
    torch.jit.save(torch.jit.script(root), str(path))


@torch.no_grad()
def _outputs(clip: ResNetCLIP) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    x = torch.randn(1, 3, 96, 128)
    ids = torch.tensor([[512, 5, 9, 300, 513, 513]])
    text = clip.text.text_projection(clip.text.text_model(input_ids=ids).last_hidden_state[:, 4])
    return clip.visual(x), clip.visual.dense_features(x), text


def _assert_same_model(a: ResNetCLIP, b: ResNetCLIP, exact: bool = True) -> None:
    for x, y in zip(_outputs(a), _outputs(b), strict=True):
        if exact:
            torch.testing.assert_close(x, y, rtol=0, atol=0)
        else:
            torch.testing.assert_close(x, y, rtol=2e-2, atol=2e-2)
    assert a.visual.config == b.visual.config


@pytest.fixture(scope="module")
def clip_and_state() -> tuple[ResNetCLIP, dict[str, torch.Tensor]]:
    clip = tiny_clip()
    return clip, to_openai_state_dict(clip)


def test_openai_state_dict_round_trip(tmp_path: Path, clip_and_state) -> None:
    clip, state = clip_and_state
    assert "visual.layer1.0.conv1.weight" in state and "transformer.resblocks.0.attn.in_proj_weight" in state
    path = tmp_path / "RN50.pt"
    torch.save(state, path)
    loaded = load_resnet_clip(path)
    _assert_same_model(clip, loaded)
    assert loaded.logit_scale == pytest.approx(42.0)


def test_openai_torchscript_archive_round_trip(tmp_path: Path, clip_and_state) -> None:
    clip, state = clip_and_state
    path = tmp_path / "RN50.pt"
    save_torchscript_archive(state, path)
    assert set(torch.jit.load(str(path), map_location="cpu").state_dict()) == set(state)
    _assert_same_model(clip, load_resnet_clip(path))


def test_open_clip_wrapped_state_dict_round_trip(tmp_path: Path, clip_and_state) -> None:
    clip, state = clip_and_state
    path = tmp_path / "open_clip_rn50.pt"
    torch.save({"epoch": 32, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    _assert_same_model(clip, load_resnet_clip(path))
    bare = tmp_path / "open_clip_bare.bin"
    torch.save(state, bare)
    _assert_same_model(clip, load_resnet_clip(bare))


def test_half_precision_checkpoint_loads_as_float32(tmp_path: Path, clip_and_state) -> None:
    clip, state = clip_and_state
    path = tmp_path / "RN50_fp16.pt"
    save_torchscript_archive({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, path)
    loaded = load_resnet_clip(path)
    assert all(p.dtype == torch.float32 for p in loaded.visual.parameters())
    assert all(p.dtype == torch.float32 for p in loaded.text.parameters())
    _assert_same_model(clip, loaded, exact=False)


def test_missing_checkpoint_says_what_to_download(tmp_path: Path) -> None:
    path = tmp_path / "weights" / "RN50.pt"
    with pytest.raises(WeightsNotFoundError) as info:
        load_resnet_clip(path)
    message = str(info.value)
    assert str(path) in message and RN50_URL in message and "depthclip-rn50:random" in message


def test_corrupt_checkpoint_raises_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "RN50.pt"
    path.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(CheckpointError):
        load_resnet_clip(path)


def test_wrong_or_incomplete_checkpoint_raises_checkpoint_error(tmp_path: Path, clip_and_state) -> None:
    _, state = clip_and_state
    vit_like = tmp_path / "vit.pt"
    torch.save(
        {
            "visual.conv1.weight": torch.zeros(8, 3, 32, 32),
            "visual.transformer.resblocks.0.ln_1.weight": torch.zeros(8),
        },
        vit_like,
    )
    with pytest.raises(CheckpointError, match="ViT"):
        load_resnet_clip(vit_like)
    incomplete = tmp_path / "incomplete.pt"
    torch.save({k: v for k, v in state.items() if not k.startswith("ln_final")}, incomplete)
    with pytest.raises(CheckpointError):
        load_resnet_clip(incomplete)
    wrong_shape = dict(state)
    wrong_shape["visual.layer1.0.conv2.weight"] = torch.zeros(3, 3, 3, 3)
    bad = tmp_path / "bad.pt"
    torch.save(wrong_shape, bad)
    with pytest.raises(CheckpointError):
        load_resnet_clip(bad)
