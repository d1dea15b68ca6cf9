"""Image(s) in, metric depth out, for batch jobs: the tolerant per-image loop over files.

The prediction itself (decoding, working size, flip, resizing back) is the model layer's one path,
:mod:`moa_depthclip.model.prediction`; ``predict_depth`` and ``working_size`` are re-exported here
because this is where users of the package look for them. What this module adds is
:func:`iter_predictions`: image by image, an unreadable file is reported as that image's error
instead of stopping the others (``moa-depthclip predict`` is built on it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from moa_depthclip.errors import DataError
from moa_depthclip.model.prediction import (
    DEFAULT_LONG_SIDE,
    ImageInput,
    predict_depth,
    to_rgb_uint8,
    working_size,
)

__all__ = ["DEFAULT_LONG_SIDE", "Prediction", "iter_predictions", "predict_depth", "working_size"]


@dataclass
class Prediction:
    """One input's result: the decoded image and its depth, or the error that stopped it."""

    index: int
    source: ImageInput
    image: np.ndarray | None = None  # upright RGB (H, W, 3) as the model saw it before resizing
    depth: np.ndarray | None = None  # float32 (H, W) metres at the image's size
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def iter_predictions(model: Any, images: Sequence[ImageInput], **options: Any) -> Iterator[Prediction]:
    """Predict image by image; an input that cannot be read (bad file, bad array) yields its error.

    ``options`` are those of :func:`predict_depth` (``long_side``, ``input_size``, ``flip``,
    ``device``). Errors other than unreadable data (a broken model, a wrong option) propagate.
    """
    for index, item in enumerate(images):
        try:
            rgb = to_rgb_uint8(item)
            depth = predict_depth(model, rgb, **options)
        except (DataError, OSError) as error:
            yield Prediction(index, item, error=error)
            continue
        yield Prediction(index, item, image=rgb, depth=depth)  # type: ignore[arg-type]
