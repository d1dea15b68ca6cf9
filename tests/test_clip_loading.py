"""CLIP weights load identically from every supported source, and failures explain themselves."""

from __future__ import annotations

import pytest
import torch
from tiny_clip import tiny_clip_config
from transformers import CLIPModel

from moa_depthclip.clip_loading import load_clip
from moa_depthclip.errors import CheckpointError, WeightsNotFoundError
from moa_depthclip.tokenizer import build_byte_level_clip_tokenizer


def _to_openai_block(state: dict, source: str, target: str) -> dict:
    """transformers encoder layer -> OpenAI residual block (the inverse of the loader's mapping)."""
    out = {
        f"{target}.attn.in_proj_weight": torch.cat(
            [state[f"{source}.self_attn.{n}_proj.weight"] for n in "qkv"]
        ),
        f"{target}.attn.in_proj_bias": torch.cat([state[f"{source}.self_attn.{n}_proj.bias"] for n in "qkv"]),
    }
    names = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2"}
    names |= {"mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    for new, old in names.items():
        for param in ("weight", "bias"):
            out[f"{target}.{old}.{param}"] = state[f"{source}.{new}.{param}"]
    return out


def to_openai_state_dict(model: CLIPModel) -> dict[str, torch.Tensor]:
    """Write a transformers CLIP in OpenAI's checkpoint key layout, independently of the loader."""
    s = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = {
        "visual.class_embedding": s["vision_model.embeddings.class_embedding"],
        "visual.conv1.weight": s["vision_model.embeddings.patch_embedding.weight"],
        "visual.positional_embedding": s["vision_model.embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": s["vision_model.pre_layrnorm.weight"],
        "visual.ln_pre.bias": s["vision_model.pre_layrnorm.bias"],
        "visual.ln_post.weight": s["vision_model.post_layernorm.weight"],
        "visual.ln_post.bias": s["vision_model.post_layernorm.bias"],
        "visual.proj": s["visual_projection.weight"].t().contiguous(),
        "token_embedding.weight": s["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": s["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": s["text_model.final_layer_norm.weight"],
        "ln_final.bias": s["text_model.final_layer_norm.bias"],
        "text_projection": s["text_projection.weight"].t().contiguous(),
        "logit_scale": s["logit_scale"],
    }
    for i in range(model.config.vision_config.num_hidden_layers):
        out |= _to_openai_block(s, f"vision_model.encoder.layers.{i}", f"visual.transformer.resblocks.{i}")
    for i in range(model.config.text_config.num_hidden_layers):
        out |= _to_openai_block(s, f"text_model.encoder.layers.{i}", f"transformer.resblocks.{i}")
    return out


class _Holder(torch.nn.Module):
    """Nested modules whose parameter names are exactly the given keys (for a TorchScript archive)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        for key, value in tensors.items():
            head, _, rest = key.partition(".")
            if rest:
                if not hasattr(self, head):
                    self.add_module(head, _Holder({}))
                getattr(self, head)._put(rest, value)
            else:
                self.register_parameter(head, torch.nn.Parameter(value, requires_grad=False))

    def _put(self, key: str, value: torch.Tensor) -> None:
        head, _, rest = key.partition(".")
        if rest:
            if not hasattr(self, head):
                self.add_module(head, _Holder({}))
            getattr(self, head)._put(rest, value)
        else:
            self.register_parameter(head, torch.nn.Parameter(value, requires_grad=False))

    def forward(self) -> int:
        return 0


@pytest.fixture(scope="module")
def reference_clip() -> CLIPModel:
    torch.manual_seed(0)
    return CLIPModel(tiny_clip_config()).eval()


def _assert_same_weights(a: CLIPModel, b: CLIPModel) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_save_pretrained_directory(tmp_path, reference_clip):
    reference_clip.save_pretrained(tmp_path / "clip")
    build_byte_level_clip_tokenizer(tmp_path / "clip")
    loaded = load_clip(str(tmp_path / "clip"))
    _assert_same_weights(loaded.model, reference_clip)
    assert loaded.tokenizer is not None and not loaded.is_random_init


def test_openai_state_dict_file(tmp_path, reference_clip):
    path = tmp_path / "ViT-tiny.pt"
    torch.save(to_openai_state_dict(reference_clip), path)
    _assert_same_weights(load_clip(str(path)).model, reference_clip)


def test_openai_torchscript_archive(tmp_path, reference_clip):
    path = tmp_path / "ViT-tiny-jit.pt"
    torch.jit.save(torch.jit.script(_Holder(to_openai_state_dict(reference_clip))), str(path))
    _assert_same_weights(load_clip(str(path)).model, reference_clip)


def test_open_clip_wrapped_state_dict(tmp_path, reference_clip):
    path = tmp_path / "open_clip.bin"
    wrapped = {
        "epoch": 3,
        "state_dict": {f"module.{k}": v for k, v in to_openai_state_dict(reference_clip).items()},
    }
    torch.save(wrapped, path)
    _assert_same_weights(load_clip(str(path)).model, reference_clip)


def test_openai_file_gives_same_features_as_transformers(tmp_path, reference_clip):
    path = tmp_path / "ViT-tiny.pt"
    torch.save(to_openai_state_dict(reference_clip), path)
    loaded = load_clip(str(path)).model
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference_clip.vision_model(pixels).pooler_output
        assert torch.allclose(loaded.vision_model(pixels).pooler_output, expected)


def test_random_init_is_marked_and_has_a_tokenizer():
    loaded = load_clip("random", clip_config=tiny_clip_config())
    assert loaded.is_random_init and loaded.tokenizer is not None


def test_missing_file_says_what_to_download(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="huggingface-cli download"):
        load_clip(str(tmp_path / "ViT-B-32.pt"))


def test_directory_without_config(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="config.json"):
        load_clip(str(tmp_path))


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="broken.pt"):
        load_clip(str(path))


def test_checkpoint_of_something_else(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a CLIP checkpoint"):
        load_clip(str(path))


def test_unreachable_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsNotFoundError, match="huggingface-cli download"):
        load_clip("nobody-here/no-such-clip-model")
