"""DepthCLIP zero-shot baseline: the published formula against an independent computation, on tiny
random ViT and ResNet CLIPs written in the real formats; flip averaging; offline errors; tokenizer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTokenizer

from moa_depthclip.baselines.clip_resnet import (
    ModifiedResNetConfig,
    load_resnet_clip,
    random_resnet_clip,
    to_openai_state_dict,
)
from moa_depthclip.baselines.depthclip import (
    DEPTHCLIP_BIN_DEPTHS,
    DEPTHCLIP_DISTANCE_WORDS,
    DepthCLIP,
    DepthCLIPConfig,
)
from moa_depthclip.data.transforms import CLIP_MEAN, CLIP_STD
from moa_depthclip.errors import CheckpointError, InputSizeError, WeightsNotFoundError
from moa_depthclip.model.outputs import DepthOutput
from moa_depthclip.tokenizer import BYTE_LEVEL_VOCAB_SIZE, build_byte_level_clip_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Token ids of the byte-level tokenizer: <|startoftext|> = 512, <|endoftext|> = 513.
TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=1,
    vocab_size=520,
    max_position_embeddings=40,
    hidden_act="quick_gelu",
    bos_token_id=512,
    eos_token_id=513,
    pad_token_id=513,
)
# Joint space half the trunk width (256), as RN50's 1024 vs 2048: the released-code mode needs that.
RESNET_EMBED = 128
TINY_RESNET = ModifiedResNetConfig(
    layers=(1, 1, 1, 1), width=8, output_dim=RESNET_EMBED, heads=4, input_resolution=64
)
SIZE = (96, 128)  # not the pretraining size: position embeddings are resized


def images(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, *SIZE, generator=torch.Generator().manual_seed(seed))


def normalise(x: torch.Tensor, kind: str = "imagenet") -> torch.Tensor:
    """ImageNet mean/std (DepthCLIP's official evaluation, the default) or CLIP's."""
    if kind == "imagenet":
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    else:
        mean, std = CLIP_MEAN, CLIP_STD
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def reference_depth(
    features: torch.Tensor, text: torch.Tensor, size: tuple[int, int], temperature: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """DepthCLIP as written in the paper: features (B, hw, D), text (K, D) -> logits, depth."""
    features = features / features.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    logits = 100.0 * features @ text.t() / temperature  # (B, hw, K)
    bins = torch.tensor(DEPTHCLIP_BIN_DEPTHS)
    depth = (logits.softmax(dim=-1) * bins).sum(dim=-1)  # (B, hw)
    h, w = size[0] // 32, size[1] // 32
    depth = depth.reshape(-1, 1, h, w)
    logits = logits.permute(0, 2, 1).reshape(-1, len(bins), h, w)
    return logits, F.interpolate(depth, size=size, mode="bilinear", align_corners=True)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tokenizer")
    build_byte_level_clip_tokenizer(directory)
    return directory


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    """A tiny CLIP ViT in the save_pretrained layout, with the tokenizer files next to it."""
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={**TEXT},
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=64,
            patch_size=32,
            hidden_act="quick_gelu",
        ),
        projection_dim=24,
    )
    directory = tmp_path_factory.mktemp("tiny_clip_vit")
    CLIPModel(config).save_pretrained(directory)
    CLIPTokenizer.from_pretrained(tokenizer_dir).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def resnet_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ResNet CLIP saved as an OpenAI-layout state dict."""
    torch.manual_seed(0)
    clip = random_resnet_clip(TINY_RESNET, CLIPTextConfig(**TEXT, projection_dim=RESNET_EMBED))
    path = tmp_path_factory.mktemp("rn") / "RN50.pt"
    torch.save(to_openai_state_dict(clip), path)
    return path


def prompt_ids(tokenizer_dir: Path) -> dict[str, torch.Tensor]:
    prompts = [f"This object is {word}" for word in DEPTHCLIP_DISTANCE_WORDS]
    return CLIPTokenizer.from_pretrained(tokenizer_dir)(prompts, padding=True, return_tensors="pt")


# -- the formula --------------------------------------------------------------------------------------


@torch.no_grad()
def test_vit_depth_matches_direct_computation(vit_dir: Path, tokenizer_dir: Path) -> None:
    model = DepthCLIP.from_vit(str(vit_dir))
    assert model.backbone == "vit" and not model.is_random_init
    clip = CLIPModel.from_pretrained(vit_dir).eval()
    # Text: transformers' own pooling (the config's eos id is the byte-level <|endoftext|>).
    text = clip.get_text_features(**prompt_ids(tokenizer_dir)).pooler_output
    x = images()
    vision = clip.vision_model(pixel_values=normalise(x), interpolate_pos_encoding=True)
    patches = vision.last_hidden_state[:, 1:]
    ln = clip.vision_model.post_layernorm
    patches = F.layer_norm(patches, patches.shape[-1:], ln.weight, ln.bias, ln.eps)
    features = patches @ clip.visual_projection.weight.t()
    logits, depth = reference_depth(features, text, SIZE)

    out = model(x)
    assert isinstance(out, DepthOutput) and out.depth.shape == (2, 1, *SIZE)
    dense = features / features.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(model.dense_features(x), dense.transpose(1, 2).reshape(2, -1, 3, 4))
    torch.testing.assert_close(out.bin_logits, logits, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(out.depth, depth, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.bin_centers, torch.tensor(DEPTHCLIP_BIN_DEPTHS))
    assert torch.isfinite(out.depth).all() and (out.depth >= 1.0).all() and (out.depth <= 3.0).all()


@torch.no_grad()
@pytest.mark.parametrize("mode", ["value", "value_positional", "released_code", "released_code_clip_norm"])
def test_resnet_depth_matches_direct_computation(
    mode: str, resnet_checkpoint: Path, tokenizer_dir: Path
) -> None:
    config = {
        "value": DepthCLIPConfig(resnet_features="value"),
        "value_positional": DepthCLIPConfig(resnet_features="value", resnet_positional_embedding=True),
        "released_code": DepthCLIPConfig(),
        "released_code_clip_norm": DepthCLIPConfig(normalization="clip"),
    }[mode]
    model = DepthCLIP.from_resnet(str(resnet_checkpoint), config, tokenizer_source=str(tokenizer_dir))
    assert model.backbone == "resnet" and not model.is_random_init
    clip = load_resnet_clip(resnet_checkpoint)
    # OpenAI's pooling: the hidden state at the arg-max token id (<|endoftext|> has the largest id).
    ids = prompt_ids(tokenizer_dir)["input_ids"]
    hidden = clip.text.text_model(input_ids=ids).last_hidden_state
    text = clip.text.text_projection(hidden[torch.arange(ids.shape[0]), ids.argmax(dim=-1)])
    x = images()
    kind = "clip" if mode.endswith("clip_norm") else "imagenet"
    grid = clip.visual.feature_map(normalise(x, kind))  # (B, C, 3, 4); the trunk is tested in test_clip_resnet
    b, c, h, w = grid.shape
    tokens = grid.reshape(b, c, h * w).transpose(1, 2)  # (B, hw, C)
    pool = clip.visual.attnpool
    if mode.startswith("value"):
        pos = torch.zeros(())  # MaskCLIP: no positional embedding before the value projection
        if mode == "value_positional":
            pos = pool.positional_embedding[1:].t().reshape(1, c, 2, 2)
            pos = F.interpolate(pos, size=(h, w), mode="bicubic", align_corners=False).reshape(c, h * w).t()
        value = (tokens + pos) @ pool.v_proj.weight.t() + pool.v_proj.bias
        features = value @ pool.c_proj.weight.t() + pool.c_proj.bias
        logits, depth = reference_depth(features, text, SIZE)
    else:
        # Authors' released code: normalise 2C-d raw features, keep every other channel, no renormalising.
        features = (tokens / tokens.norm(dim=-1, keepdim=True))[..., 0::2]
        text_n = text / text.norm(dim=-1, keepdim=True)
        logits = (100.0 * features @ text_n.t() / 0.1).permute(0, 2, 1).reshape(b, -1, h, w)
        coarse = (logits.softmax(dim=1) * torch.tensor(DEPTHCLIP_BIN_DEPTHS).view(1, -1, 1, 1)).sum(1, True)
        depth = F.interpolate(coarse, size=SIZE, mode="bilinear", align_corners=True)
    out = model(x)
    torch.testing.assert_close(out.bin_logits, logits, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(out.depth, depth, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_resnet_attention_features_are_the_all_query_attention_pool() -> None:
    """``attention``: DepthCLIP's attention pool (all tokens as queries, spatial positional embedding
    resized bilinearly with align_corners=True, mean token kept), recomputed with torch's own
    multi-head attention."""
    model = DepthCLIP.from_resnet(
        "random",
        DepthCLIPConfig(resnet_features="attention"),
        architecture=TINY_RESNET,
        text_config=CLIPTextConfig(**TEXT, projection_dim=RESNET_EMBED),
    )
    x = images(1)
    resnet = model.encoder.resnet
    pool = resnet.attnpool
    grid = resnet.feature_map(normalise(x))
    b, c, h, w = grid.shape
    tokens = grid.reshape(b, c, h * w).permute(2, 0, 1)  # (hw, B, C)
    tokens = torch.cat([tokens.mean(dim=0, keepdim=True), tokens])
    spatial = pool.positional_embedding[1:].t().reshape(1, c, 2, 2)
    spatial = F.interpolate(spatial, size=(h, w), mode="bilinear", align_corners=True).reshape(c, h * w).t()
    tokens = tokens + torch.cat([pool.positional_embedding[:1], spatial])[:, None]
    out, _ = F.multi_head_attention_forward(
        tokens, tokens, tokens, c, pool.num_heads, None,
        torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]), None, None, False, 0.0,
        pool.c_proj.weight, pool.c_proj.bias, training=False, need_weights=False,
        use_separate_proj_weight=True, q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight,
        v_proj_weight=pool.v_proj.weight,
    )  # fmt: skip
    expected = F.normalize(out[1:].permute(1, 2, 0).reshape(b, -1, h, w), dim=1)
    torch.testing.assert_close(model.dense_features(x), expected, rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_custom_prompts_bins_and_temperature(vit_dir: Path, tokenizer_dir: Path) -> None:
    config = DepthCLIPConfig(
        templates=("This {obj} is {distance}", "A {obj} that is {distance}"),
        objects=("object", "wall"),
        distance_words=("close", "far"),
        bin_depths=(1.0, 5.0),
        temperature=0.5,
    )
    model = DepthCLIP.from_vit(str(vit_dir), config)
    clip = CLIPModel.from_pretrained(vit_dir).eval()
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    text = []
    for word in ("close", "far"):
        prompts = [t.format(obj=o, distance=word) for t in config.templates for o in config.objects]
        embedded = clip.get_text_features(
            **tokenizer(prompts, padding=True, return_tensors="pt")
        ).pooler_output
        mean = F.normalize(embedded, dim=-1).mean(dim=0)
        text.append(mean / mean.norm())
    torch.testing.assert_close(model.text_features, torch.stack(text), rtol=1e-5, atol=1e-6)
    x = images(1)
    features = model.dense_features(x)
    logits = 100.0 * torch.einsum("bdhw,kd->bkhw", features, torch.stack(text)) / 0.5
    coarse = logits.softmax(1)[:, :1] * 1.0 + logits.softmax(1)[:, 1:] * 5.0
    expected = F.interpolate(coarse, size=SIZE, mode="bilinear", align_corners=True)
    torch.testing.assert_close(model(x).depth, expected, rtol=1e-5, atol=1e-5)


# -- flip averaging -----------------------------------------------------------------------------------


@torch.no_grad()
def test_flip_average_of_symmetric_input_is_symmetric() -> None:
    """DepthCLIPConfig(flip=True) flip-averages through the one prediction path; forward never flips."""
    from moa_depthclip.model.prediction import predict_batch

    model = DepthCLIP.from_resnet(
        "random",
        DepthCLIPConfig(flip=True, resnet_features="value", resnet_positional_embedding=True),
        architecture=TINY_RESNET,
        text_config=CLIPTextConfig(**TEXT, projection_dim=RESNET_EMBED),
    )
    x = images(1)
    symmetric = 0.5 * (x + x.flip(-1))
    depth = predict_batch(model, symmetric)
    torch.testing.assert_close(depth, depth.flip(-1), rtol=0, atol=1e-6)
    # Without flip averaging the positional embedding breaks the symmetry: the option does something.
    model.config.flip = False
    plain = predict_batch(model, symmetric)
    assert not torch.allclose(plain, plain.flip(-1), atol=1e-6)
    # And on any input it is the mean of the two passes; the model's own forward is one pass.
    model.config.flip = True
    expected = 0.5 * (plain_depth(model, x) + plain_depth(model, x.flip(-1)).flip(-1))
    torch.testing.assert_close(predict_batch(model, x), expected)
    torch.testing.assert_close(model(x).depth, plain_depth(model, x))


def plain_depth(model: DepthCLIP, x: torch.Tensor) -> torch.Tensor:
    return model.depth_from_logits(model.bin_logits(x), (x.shape[-2], x.shape[-1]))


# -- construction, state, errors ----------------------------------------------------------------------


def test_text_features_are_a_buffer_and_no_text_tower_is_kept(
    resnet_checkpoint: Path, tokenizer_dir: Path
) -> None:
    model = DepthCLIP.from_resnet(str(resnet_checkpoint), tokenizer_source=str(tokenizer_dir))
    state = model.state_dict()
    assert state["text_features"].shape == (7, RESNET_EMBED)
    assert not any("text_model" in key or "token_embedding" in key for key in state)
    torch.testing.assert_close(model.text_features.norm(dim=-1), torch.ones(7))
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.encoder.training  # batch-norm statistics stay frozen


def test_random_init_is_reported() -> None:
    model = DepthCLIP.from_resnet(
        "random", architecture=TINY_RESNET, text_config=CLIPTextConfig(**TEXT, projection_dim=RESNET_EMBED)
    )
    assert model.is_random_init
    info = model.describe()
    assert info["random_init"] is True and info["backbone"] == "resnet" and info["source"] == "random"
    json.dumps(info)


def test_config_serialises() -> None:
    config = DepthCLIPConfig(flip=True, temperature=0.2)
    assert DepthCLIPConfig.from_json(config.to_json()) == config
    assert DepthCLIPConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert DepthCLIPConfig().prompts()[3] == ["This object is not in distance"]
    with pytest.raises(ValueError):
        DepthCLIPConfig(bin_depths=(1.0, 2.0))
    with pytest.raises(ValueError):
        DepthCLIPConfig(temperature=0.0)
    with pytest.raises(ValueError):
        DepthCLIPConfig.from_dict({"bins": [1.0]})


def test_input_not_multiple_of_32_raises(vit_dir: Path) -> None:
    model = DepthCLIP.from_vit(str(vit_dir))
    with pytest.raises(InputSizeError, match="multiple of 32"):
        model(torch.rand(1, 3, 100, 128))
    with pytest.raises(InputSizeError):
        model(torch.rand(1, 1, 96, 128))


def test_missing_checkpoint_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "weights" / "RN50.pt"
    with pytest.raises(WeightsNotFoundError) as info:
        DepthCLIP.from_resnet(str(path))
    assert str(path) in str(info.value) and "RN50.pt" in str(info.value)
    with pytest.raises(WeightsNotFoundError, match="RN50.pt"):
        DepthCLIP.from_spec(f"depthclip-rn50:{path}")


def test_corrupt_checkpoint_raises_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "RN50.pt"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError):
        DepthCLIP.from_resnet(str(path))


def test_missing_tokenizer_is_explained(resnet_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="tokenizer"):
        DepthCLIP.from_resnet(str(resnet_checkpoint), tokenizer_source=str(tmp_path / "no_tokenizer"))


def test_tokenizer_found_next_to_the_checkpoint(
    resnet_checkpoint: Path, tokenizer_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "RN50.pt").write_bytes(resnet_checkpoint.read_bytes())
    for name in ("vocab.json", "merges.txt"):
        (folder / name).write_bytes((tokenizer_dir / name).read_bytes())
    model = DepthCLIP.from_spec(f"depthclip-rn50:{folder / 'RN50.pt'}")
    reference = DepthCLIP.from_resnet(str(resnet_checkpoint), tokenizer_source=str(tokenizer_dir))
    torch.testing.assert_close(model.text_features, reference.text_features)


def test_unknown_spec_is_rejected() -> None:
    with pytest.raises(ValueError, match="depthclip-rn50"):
        DepthCLIP.from_spec("depthclip-rn101:x")


# -- the byte-level tokenizer -------------------------------------------------------------------------


def test_byte_level_tokenizer_files_and_encoding(tokenizer_dir: Path) -> None:
    vocab = json.loads((tokenizer_dir / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == BYTE_LEVEL_VOCAB_SIZE
    assert vocab["<|endoftext|>"] == max(vocab.values()) and vocab["<|startoftext|>"] == 512
    assert "a</w>" in vocab and "Ġ" in vocab  # byte-unicode symbol of the space byte
    assert (tokenizer_dir / "merges.txt").read_text(encoding="utf-8").startswith("#version: 0.2")
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    ids = tokenizer("This object is Far")["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "<|startoftext|>" and tokens[-1] == "<|endoftext|>"
    assert tokens[1:5] == ["t", "h", "i", "s</w>"]  # lower-cased, one token per byte, word end marked
    assert tokenizer.decode(ids, skip_special_tokens=True) == "this object is far"
    assert math.isclose(len(tokenizer), BYTE_LEVEL_VOCAB_SIZE)


# -- saving and loading --------------------------------------------------------------------------------


@torch.no_grad()
@pytest.mark.parametrize("backbone", ["vit", "resnet"])
def test_save_pretrained_round_trip(
    backbone: str, vit_dir: Path, resnet_checkpoint: Path, tokenizer_dir: Path, tmp_path: Path
) -> None:
    from moa_depthclip.inference.loading import load_depth_model

    if backbone == "vit":
        model = DepthCLIP.from_vit(str(vit_dir))
    else:
        model = DepthCLIP.from_resnet(str(resnet_checkpoint), tokenizer_source=str(tokenizer_dir))
    model.save_pretrained(tmp_path / "saved")
    restored = DepthCLIP.from_pretrained(tmp_path / "saved")
    assert restored.describe() == model.describe()
    torch.testing.assert_close(restored(images()).depth, model(images()).depth, rtol=0, atol=0)
    # The same folder through the one loader every command uses.
    loaded = load_depth_model(str(tmp_path / "saved"))
    assert isinstance(loaded, DepthCLIP)


def test_from_pretrained_rejects_other_folders(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="not a saved DepthCLIP folder"):
        DepthCLIP.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "moa-depthclip"}')
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="does not describe a DepthCLIP"):
        DepthCLIP.from_pretrained(tmp_path)


def test_evaluate_command_passes_the_tokenizer(resnet_checkpoint: Path, tokenizer_dir: Path, capsys) -> None:
    from moa_depthclip.cli.main import main

    args = ["evaluate", "--dataset", "synthetic", "--num", "2", "--height", "64", "--width", "64"]
    args += [
        "--model",
        f"depthclip-rn50:{resnet_checkpoint}",
        "--tokenizer",
        str(tokenizer_dir),
        "--no-progress",
    ]
    assert main(args) == 0
    assert f"depthclip-rn50:{resnet_checkpoint}" in capsys.readouterr().out
