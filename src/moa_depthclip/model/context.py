"""The global semantic context: what the frozen CLIP text encoder says about depth, as one vector.

A prompt bank (templates x distance words, e.g. "This object is far.") is encoded once by the
frozen text encoder and stored in the model as a buffer, so inference needs neither the text
encoder nor a tokenizer. A learned linear layer maps the joint-space vector to the vision width.

Modes:
* ``static`` – the L2-normalised mean of the normalised prompt embeddings: one scene prior.
* ``image``  – the image's CLS token, taken through CLIP's own (frozen) post-LN and visual
  projection, attends over the prompt bank; the weighted prompt embedding is the context. This
  makes the context depend on what the image looks like (an ablation of the static variant).
* ``none``   – no context (ablation): ``forward`` returns None and the module has no trainable
  parameters; the prompt bank buffer is still stored so that every mode has the same buffers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPModel, CLIPTokenizer

CONTEXT_MODES = ("static", "image", "none")


def prompt_texts(templates: tuple[str, ...], words: tuple[str, ...]) -> list[str]:
    return [template.format(word) for template in templates for word in words]


@torch.no_grad()
def encode_prompt_bank(model: CLIPModel, tokenizer: CLIPTokenizer, texts: list[str]) -> torch.Tensor:
    """(P, E) L2-normalised text embeddings in CLIP's joint space."""
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    features = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    if not isinstance(features, torch.Tensor):  # newer transformers may return a model output
        features = features.pooler_output
    return F.normalize(features.float(), dim=-1)


class SceneContext(nn.Module):
    """Holds the prompt bank and turns it (optionally with the image) into the context vector."""

    def __init__(self, num_prompts: int, joint_dim: int, width: int, mode: str, temperature: float) -> None:
        super().__init__()
        if mode not in CONTEXT_MODES:
            raise ValueError(f"context mode must be one of {', '.join(CONTEXT_MODES)}, got {mode!r}")
        self.mode = mode
        self.temperature = temperature
        self.register_buffer("prompt_bank", torch.zeros(num_prompts, joint_dim))
        self.projection = nn.Linear(joint_dim, width) if mode != "none" else None

    @property
    def enabled(self) -> bool:
        return self.projection is not None

    def forward(self, image_embedding: torch.Tensor | None, batch_size: int) -> torch.Tensor | None:
        """(B, width) context, or None in ``none`` mode. ``image_embedding`` (B, E) is only used in
        ``image`` mode."""
        if self.projection is None:
            return None
        bank = self.prompt_bank
        if self.mode == "image":
            if image_embedding is None:
                raise ValueError("image-conditioned context needs the image embedding")
            similarity = F.normalize(image_embedding, dim=-1) @ bank.t() / self.temperature
            joint = similarity.softmax(dim=-1) @ bank
        else:
            joint = bank.mean(dim=0, keepdim=True).expand(batch_size, -1)
        return self.projection(F.normalize(joint, dim=-1))
