"""Loading saved models (local folders or hub ids) with errors a user can act on.

huggingface_hub's ``PyTorchModelHubMixin.from_pretrained`` loads with ``strict=False`` and, offline,
fails with hub-internal exceptions (or retries for a while). :class:`HubLoadingMixin` sits in front
of it: weights must match the architecture exactly (a wrong folder fails instead of silently
leaving random weights), a missing folder or unreachable hub id raises
:class:`~moa_depthclip.errors.WeightsNotFoundError`, and a broken file raises
:class:`~moa_depthclip.errors.CheckpointError`.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from moa_depthclip.clip_loading import go_offline_if_hub_unreachable, is_hub_id
from moa_depthclip.errors import CheckpointError, WeightsNotFoundError, weights_file_error

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def is_saved_model_dir(path: str | os.PathLike) -> bool:
    """A ``save_pretrained`` folder: config.json next to model.safetensors."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


class HubLoadingMixin:
    """Put before ``PyTorchModelHubMixin`` in the bases: strict loading and clear errors."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
        """Load a ``save_pretrained`` folder or a hub id (``owner/name``) in eval mode."""
        source = str(pretrained_model_name_or_path)
        name = cls.__name__
        kwargs.setdefault("strict", True)
        if not is_hub_id(source):
            path = Path(source).expanduser()
            if not path.is_dir():
                raise WeightsNotFoundError(f"{name}: no saved model at {source} (folder not found)")
            if not is_saved_model_dir(path):
                raise WeightsNotFoundError(
                    f"{name}: {source} is not a saved {name} folder (it needs {CONFIG_FILE} and {WEIGHTS_FILE}, "
                    f"as written by save_pretrained)"
                )
            source = str(path)
        else:
            go_offline_if_hub_unreachable()  # seconds, not 30 s of retries, when offline
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the mixin prints "Loading weights ..."
                model = super().from_pretrained(source, **kwargs)  # type: ignore[misc]
        except (WeightsNotFoundError, CheckpointError):
            raise
        except RuntimeError as error:  # load_state_dict: missing/unexpected keys or shape mismatch
            raise weights_file_error(error, source, name) from None
        except Exception as error:
            if _is_hub_lookup_error(error):
                raise WeightsNotFoundError(
                    f"{name}: could not load '{source}': it is not a local folder, not in the Hugging Face "
                    f"cache, and the hub could not be reached or has no such model ({type(error).__name__}). "
                    f"Download the model folder on a machine with internet access (e.g. `huggingface-cli "
                    f"download {source} --local-dir models/{source.split('/')[-1]}`) and pass the folder."
                ) from error
            if isinstance(error, (ValueError, KeyError, TypeError)):
                raise CheckpointError(f"{name}: could not load the saved model {source}: {error}") from error
            raise weights_file_error(error, source, name) from None  # e.g. a truncated model.safetensors
        return model.eval()


def _is_hub_lookup_error(error: BaseException) -> bool:
    from huggingface_hub import errors as hub_errors

    names = (
        "LocalEntryNotFoundError",
        "EntryNotFoundError",
        "RepositoryNotFoundError",
        "RevisionNotFoundError",
        "HFValidationError",
        "OfflineModeIsEnabled",
        "HfHubHTTPError",
    )
    lookup = tuple(getattr(hub_errors, n) for n in names if hasattr(hub_errors, n))
    return isinstance(error, (*lookup, ConnectionError, TimeoutError))
