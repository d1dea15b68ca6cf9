"""Load CLIP (image + text encoders) into Hugging Face ``transformers`` modules from any usual source.

Sources, in the order they are recognised:

* ``"random"`` – an explicitly random initialisation of the ViT-B/32 shape (or of a given config),
  for offline and demo use; every consumer reports it.
* an existing file (``.pt``/``.pth``/``.bin``/``.safetensors``) – an OpenAI CLIP checkpoint (the
  TorchScript archive such as ``ViT-B-32.pt`` or a plain state dict) or an open_clip state dict,
  converted here to the transformers layout;
* an existing directory – a ``save_pretrained`` layout (``config.json`` + weights);
* anything else – a Hugging Face hub id, resolved (and cached) as transformers does.

When weights cannot be reached the error says what to download and where to put it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
from transformers.utils import logging as hf_logging

from moa_depthclip.config import DEFAULT_CLIP
from moa_depthclip.errors import CheckpointError, WeightsNotFoundError, first_line
from moa_depthclip.tokenizer import byte_level_clip_tokenizer

logger = logging.getLogger(__name__)

RANDOM = "random"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
# A byte-level BPE vocabulary holds at least the 256 byte symbols; transformers returns a tokenizer
# with only its special tokens (2) when the vocabulary files are missing, instead of raising.
MIN_TOKENIZER_VOCAB = 256
# Seconds to wait for the hub's TCP handshake before treating the machine as offline.
HUB_PROBE_TIMEOUT_S = 3.0


@dataclass
class LoadedCLIP:
    """A CLIP model, the tokenizer that goes with it (when one is available) and where it came from."""

    model: CLIPModel
    tokenizer: CLIPTokenizer | None
    source: str
    is_random_init: bool


def download_hint(source: str = DEFAULT_CLIP) -> str:
    """The instructions shown whenever CLIP weights cannot be found."""
    return (
        f"To use pretrained CLIP weights, download them on a machine with internet access, e.g.\n"
        f"    huggingface-cli download {DEFAULT_CLIP} --local-dir weights/clip-vit-base-patch32\n"
        f"copy the folder here and pass its path (e.g. --clip weights/clip-vit-base-patch32). "
        f"An OpenAI checkpoint file (ViT-B-32.pt) also works: pass its path. "
        f"To run without pretrained weights, pass --clip random (outputs are then marked as "
        f"coming from a randomly initialised backbone)."
    )


def is_hub_id(source: str) -> bool:
    """``owner/name`` that is not a local path: what every loader here resolves on the hub."""
    parts = source.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not source.startswith((".", "~"))
        and not any(character.isspace() or character == "\\" for character in source)
        and not source.endswith(CHECKPOINT_SUFFIXES)
        and not Path(source).expanduser().exists()
    )


def looks_like_path(source: str) -> bool:
    """A source the user meant as a file or folder (so a missing one is reported as missing)."""
    return (
        source.startswith((".", "/", "~"))
        or source.endswith(CHECKPOINT_SUFFIXES)
        or (("/" in source or "\\" in source) and not is_hub_id(source))
    )


def load_clip(
    source: str = DEFAULT_CLIP,
    *,
    clip_config: dict[str, Any] | CLIPConfig | None = None,
    tokenizer_source: str | None = None,
) -> LoadedCLIP:
    """Load a CLIP model (vision + text towers) and, where possible, its tokenizer.

    ``clip_config`` only matters for ``source="random"``: the architecture to initialise
    (defaults to ViT-B/32). ``tokenizer_source`` overrides where the tokenizer comes from
    (checkpoint files carry none).
    """
    if source == RANDOM:
        tokenizer = load_tokenizer(tokenizer_source) if tokenizer_source else byte_level_clip_tokenizer()
        config = _with_tokenizer_ids(_as_clip_config(clip_config), tokenizer)
        model = CLIPModel(config).eval()
        return LoadedCLIP(model, tokenizer, RANDOM, is_random_init=True)

    path = Path(source).expanduser()
    if path.is_file():
        model = clip_from_checkpoint_file(path)
        tokenizer = load_tokenizer(tokenizer_source) if tokenizer_source else None
        return LoadedCLIP(model, tokenizer, str(path), is_random_init=False)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise WeightsNotFoundError(
                f"{path} is a directory but holds no config.json: it is not a save_pretrained CLIP "
                f"folder.\n{download_hint()}"
            )
        model = _from_pretrained(str(path))
        tokenizer = load_tokenizer(tokenizer_source or str(path), required=bool(tokenizer_source))
        return LoadedCLIP(model, tokenizer, str(path), is_random_init=False)
    if looks_like_path(source):
        raise WeightsNotFoundError(f"CLIP weights not found: {source} does not exist.\n{download_hint()}")
    go_offline_if_hub_unreachable()
    model = _from_pretrained(source)
    tokenizer = load_tokenizer(tokenizer_source or source, required=bool(tokenizer_source))
    return LoadedCLIP(model, tokenizer, source, is_random_init=False)


def _as_clip_config(clip_config: dict[str, Any] | CLIPConfig | None) -> CLIPConfig:
    if clip_config is None:
        return CLIPConfig()  # transformers' defaults are the ViT-B/32 shapes
    if isinstance(clip_config, CLIPConfig):
        return CLIPConfig.from_dict(clip_config.to_dict())  # a copy: the caller's stays as it was
    return CLIPConfig.from_dict(clip_config)


def _with_tokenizer_ids(config: CLIPConfig, tokenizer: CLIPTokenizer) -> CLIPConfig:
    """Make the text tower pool where this tokenizer puts its end-of-text token.

    transformers' CLIP text model pools at the first ``eos_token_id`` of each prompt. The config's
    id (49407) is the real CLIP vocabulary's; with any other tokenizer (the byte-level one of random
    mode ends prompts with 513) no prompt contains it, every prompt is pooled at its first token and
    all prompt embeddings come out equal. A random text tower has no vocabulary of its own, so it
    takes the tokenizer's ids.
    """
    text = config.text_config
    for name in ("eos_token_id", "bos_token_id", "pad_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            setattr(text, name, int(value))
    if text.vocab_size < len(tokenizer):
        raise WeightsNotFoundError(
            f"the tokenizer has {len(tokenizer)} tokens but the random text tower only {text.vocab_size} "
            f"(text_config.vocab_size): use a smaller tokenizer or a larger vocab_size"
        )
    return config


def go_offline_if_hub_unreachable(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Switch huggingface_hub to offline mode when its endpoint cannot be reached; True if offline.

    Without this, an unreachable hub costs about 30 s of retries (and ten "Retrying" lines) per
    file before the error. One TCP handshake with a short timeout tells the same thing; in offline
    mode the cache is still used, so cached models load as before. Skipped behind a proxy (the
    direct probe would say nothing) and once offline mode is on.
    """
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return True
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return False
    endpoint = urlsplit(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    outcome: dict[str, BaseException | bool] = {}

    def connect() -> None:  # in a thread: a hanging DNS lookup is not bounded by the socket timeout
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            outcome["reached"] = True
        except OSError as error:
            outcome["error"] = error

    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout_s + 0.5)
    if outcome.get("reached"):
        return False
    reason = outcome.get("error", f"no answer within {timeout_s:g} s")
    logger.warning("cannot reach %s (%s): using only the local Hugging Face cache", host, reason)
    constants.HF_HUB_OFFLINE = True
    return True


def _from_pretrained(source: str) -> CLIPModel:
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "some weights unused" notices are noise here
    try:
        return CLIPModel.from_pretrained(source).eval()
    except OSError as error:
        raise WeightsNotFoundError(
            f"Could not load CLIP weights '{source}': they are not in the local Hugging Face cache "
            f"and could not be downloaded ({first_line(error)}).\n{download_hint(source)}"
        ) from error
    finally:
        hf_logging.set_verbosity(verbosity)


_TOKENIZER_HINT = (
    "The tokenizer files (vocab.json, merges.txt) come with any Hugging Face CLIP folder, e.g. "
    f"`huggingface-cli download {DEFAULT_CLIP} --local-dir weights/clip-vit-base-patch32`."
)


def load_tokenizer(source: str, required: bool = True, hint: str | None = None) -> CLIPTokenizer | None:
    """The CLIP tokenizer of a folder or hub id; None (or the error when ``required``) when absent.

    ``hint`` replaces the default advice in the error (e.g. where DepthCLIP looks for it).
    """
    if is_hub_id(source):
        go_offline_if_hub_unreachable()
    try:
        tokenizer = CLIPTokenizer.from_pretrained(source)
    except (OSError, ValueError, TypeError) as error:
        if not required:
            return None
        raise WeightsNotFoundError(
            f"Could not load the CLIP tokenizer from '{source}' ({first_line(error)}). {hint or _TOKENIZER_HINT}"
        ) from error
    if len(tokenizer) < MIN_TOKENIZER_VOCAB and not required:
        return None
    return check_tokenizer(tokenizer, source)


def check_tokenizer(tokenizer: CLIPTokenizer, source: str) -> CLIPTokenizer:
    """``tokenizer`` if it has a real vocabulary, else :class:`WeightsNotFoundError`.

    transformers builds a tokenizer of special tokens only (2 of them) when vocab.json and
    merges.txt are missing, instead of raising: every prompt would tokenise to the same ids and all
    text features would be equal, a silently constant depth.
    """
    if len(tokenizer) < MIN_TOKENIZER_VOCAB:
        raise WeightsNotFoundError(
            f"The CLIP tokenizer from '{source}' has only {len(tokenizer)} tokens: its vocab.json and "
            f"merges.txt are missing (not in that folder, not in the Hugging Face cache). "
            f"{_TOKENIZER_HINT}"
        )
    return tokenizer


def check_text_features(features: torch.Tensor, source: str) -> torch.Tensor:
    """``features`` (P, E) if the prompts were told apart, else :class:`WeightsNotFoundError`.

    Identical embeddings for different prompts mean the tokenizer or the text tower is broken
    (e.g. every prompt tokenised the same); the model would then predict a constant depth.
    """
    if features.shape[0] > 1 and bool(torch.allclose(features, features[:1].expand_as(features), atol=1e-6)):
        raise WeightsNotFoundError(
            f"every prompt got the same text embedding from '{source}': its tokenizer or text tower "
            f"is not usable. {_TOKENIZER_HINT}\n{download_hint()}"
        )
    return features


# --------------------------------------------------------------------------------------------------
# OpenAI / open_clip checkpoint files


def read_checkpoint_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from a TorchScript archive, a ``torch.save`` file or a safetensors file.

    Wrappers (``{"state_dict": ...}``, ``{"model": ...}``) and DDP's ``module.`` prefix are removed.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"checkpoint not found: {path}\n{download_hint()}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        elif _is_torchscript_archive(path):
            with warnings.catch_warnings():  # OpenAI ships TorchScript; torch warns it is deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch/zip/pickle raise many types for a damaged file
        raise CheckpointError(f"{path} is not a readable checkpoint ({first_line(error)}).") from error
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors.")
    return {key.removeprefix("module."): value for key, value in state.items()}


def _is_torchscript_archive(path: Path) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder; plain torch.save zips have none."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.startswith("code/") for name in archive.namelist())


def clip_from_checkpoint_file(path: str | os.PathLike[str]) -> CLIPModel:
    """Build a transformers ``CLIPModel`` from an OpenAI or open_clip ViT checkpoint file."""
    state = read_checkpoint_state_dict(path)
    if "visual.conv1.weight" not in state or "visual.transformer.resblocks.0.ln_1.weight" not in state:
        kind = (
            "a ResNet CLIP (use the DepthCLIP ResNet loader)"
            if "visual.layer1.0.conv1.weight" in state
            else ("not a CLIP checkpoint")
        )
        raise CheckpointError(
            f"{path} is {kind}: expected OpenAI/open_clip ViT keys such as 'visual.conv1.weight' and "
            f"'visual.transformer.resblocks.0.ln_1.weight'."
        )
    config = clip_config_from_openai_state_dict(state)
    converted = convert_openai_state_dict(state)
    model = CLIPModel(config)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    missing = [key for key in missing if not key.endswith("position_ids")]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: converted weights do not fit the inferred CLIP architecture "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})."
        )
    return model.eval()


def _count_blocks(state: dict[str, torch.Tensor], prefix: str) -> int:
    indices = {int(key[len(prefix) :].split(".")[0]) for key in state if key.startswith(prefix)}
    return max(indices) + 1 if indices else 0


def clip_config_from_openai_state_dict(state: dict[str, torch.Tensor]) -> CLIPConfig:
    """Infer the CLIP architecture from tensor shapes (heads follow CLIP's width / 64 rule)."""
    vision_width, _, patch, _ = state["visual.conv1.weight"].shape
    positions = state["visual.positional_embedding"].shape[0]
    grid = round((positions - 1) ** 0.5)
    if grid * grid != positions - 1:
        raise CheckpointError(f"visual.positional_embedding has {positions} rows: not a square grid + CLS.")
    text_width = state["ln_final.weight"].shape[0]
    vision_config = {
        "hidden_size": vision_width,
        "intermediate_size": state["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        "num_hidden_layers": _count_blocks(state, "visual.transformer.resblocks."),
        "num_attention_heads": max(1, vision_width // 64),
        "image_size": patch * grid,
        "patch_size": patch,
        "projection_dim": state["visual.proj"].shape[1],
        "hidden_act": "quick_gelu",
    }
    text_config = {
        "hidden_size": text_width,
        "intermediate_size": state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        "num_hidden_layers": _count_blocks(state, "transformer.resblocks."),
        "num_attention_heads": max(1, text_width // 64),
        "vocab_size": state["token_embedding.weight"].shape[0],
        "max_position_embeddings": state["positional_embedding"].shape[0],
        "projection_dim": state["text_projection"].shape[1],
        "hidden_act": "quick_gelu",
    }
    return CLIPConfig(
        text_config=text_config,
        vision_config=vision_config,
        projection_dim=state["visual.proj"].shape[1],
    )


def _convert_block(state: dict[str, torch.Tensor], source: str, target: str) -> dict[str, torch.Tensor]:
    """One OpenAI residual attention block -> transformers ``CLIPEncoderLayer`` tensors."""
    out: dict[str, torch.Tensor] = {}
    weight = state[f"{source}.attn.in_proj_weight"]
    bias = state[f"{source}.attn.in_proj_bias"]
    for name, w, b in zip(("q", "k", "v"), weight.chunk(3, dim=0), bias.chunk(3, dim=0), strict=True):
        out[f"{target}.self_attn.{name}_proj.weight"] = w.clone()
        out[f"{target}.self_attn.{name}_proj.bias"] = b.clone()
    pairs = {
        "attn.out_proj": "self_attn.out_proj",
        "ln_1": "layer_norm1",
        "ln_2": "layer_norm2",
        "mlp.c_fc": "mlp.fc1",
        "mlp.c_proj": "mlp.fc2",
    }
    for old, new in pairs.items():
        for param in ("weight", "bias"):
            out[f"{target}.{new}.{param}"] = state[f"{source}.{old}.{param}"]
    return out


def convert_openai_text_tower(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI text tower keys -> transformers ``CLIPModel`` keys (``text_model.*``, ``text_projection``)."""
    out = {
        "text_model.embeddings.token_embedding.weight": state["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": state["positional_embedding"],
        "text_model.final_layer_norm.weight": state["ln_final.weight"],
        "text_model.final_layer_norm.bias": state["ln_final.bias"],
        "text_projection.weight": state["text_projection"].t().contiguous(),
    }
    for index in range(_count_blocks(state, "transformer.resblocks.")):
        out.update(
            _convert_block(state, f"transformer.resblocks.{index}", f"text_model.encoder.layers.{index}")
        )
    if "logit_scale" in state:
        out["logit_scale"] = state["logit_scale"].reshape(())
    return out


def convert_openai_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI/open_clip ViT CLIP state dict -> transformers ``CLIPModel`` state dict."""
    out = {
        "vision_model.embeddings.class_embedding": state["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": state["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": state["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": state["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": state["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": state["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": state["visual.ln_post.bias"],
        "visual_projection.weight": state["visual.proj"].t().contiguous(),
    }
    for index in range(_count_blocks(state, "visual.transformer.resblocks.")):
        out.update(
            _convert_block(
                state, f"visual.transformer.resblocks.{index}", f"vision_model.encoder.layers.{index}"
            )
        )
    out.update(convert_openai_text_tower(state))
    return out
