"""Image transforms shared by data loading, models and inference (no torchvision)."""

from __future__ import annotations

# CLIP's input normalisation (OpenAI CLIP preprocessing), applied inside the models.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
