"""Errors meant for the person running the tool: the message says what is wrong and how to fix it.

Also the few helpers that turn library exceptions into such messages, so that every loader and
every command words the same fault the same way: :func:`user_message` (what the CLI prints, with
DataLoader worker tracebacks reduced to the original message), :func:`state_dict_mismatch` (the
keys named in a ``load_state_dict`` error) and :func:`weights_file_error` (a corrupt, truncated or
mismatching weights file as a :class:`CheckpointError`).
"""

from __future__ import annotations

import re
from pathlib import Path


class UserFacingError(Exception):
    """Base class: the CLI prints the message without a traceback."""


class WeightsNotFoundError(UserFacingError, FileNotFoundError):
    """Pretrained weights could not be found locally nor downloaded."""


class CheckpointError(UserFacingError, ValueError):
    """A checkpoint file exists but is not a usable checkpoint (corrupt, wrong format, wrong shapes)."""


class InputSizeError(UserFacingError, ValueError):
    """An input tensor has a size the model cannot take (e.g. not a multiple of 32)."""


class DataError(UserFacingError, ValueError):
    """A data file is missing, unreadable or holds invalid values; the message names the file."""


class ConfigError(UserFacingError, ValueError):
    """A configuration value, file, preset or override is invalid; the message names the key."""


class OutputError(UserFacingError, OSError):
    """An output folder or file cannot be written; raised before any work is done."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name when it has none)."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


_WORKER_PREFIX = re.compile(r"^Caught \w+ in DataLoader worker process \d+\.")


def user_message(error: BaseException) -> str:
    """What the command line prints for a :class:`UserFacingError`.

    A ``DataLoader`` re-raises a worker's exception as the same type whose message is the whole
    worker traceback; the original message is what follows the last ``TypeName:`` line of it.
    """
    text = str(error)
    if not _WORKER_PREFIX.match(text):
        return text
    kind = type(error)
    for marker in (f"{kind.__module__}.{kind.__qualname__}: ", f"{kind.__qualname__}: "):
        position = text.rfind(marker)
        if position >= 0:
            return text[position + len(marker) :].strip()
    return text.splitlines()[-1].strip()


_SIZE_MISMATCH = re.compile(
    r"size mismatch for ([^:\s]+): copying a param with shape (?:torch\.Size\()?(.+?)\)? from checkpoint, "
    r"the shape in current model is (?:torch\.Size\()?(.+?)\)?\.?$"
)
_KEY_LIST = re.compile(r"(Missing|Unexpected) key\(s\) in state_dict: (.*?)\.\s*$")


def state_dict_mismatch(error: BaseException, limit: int = 4) -> str:
    """One line naming the mismatched keys of a ``load_state_dict`` RuntimeError.

    PyTorch lists them on separate lines after a generic first line; this keeps the first few of
    each kind (size mismatches with both shapes, missing and unexpected keys).
    """
    parts: list[str] = []
    mismatches = []
    for line in str(error).splitlines():
        line = line.strip()
        size = _SIZE_MISMATCH.search(line)
        if size:
            mismatches.append(f"{size.group(1)} {size.group(2)} in the file vs {size.group(3)} in the model")
            continue
        keys = _KEY_LIST.search(line)
        if keys:
            names = [name.strip().strip('"') for name in keys.group(2).split(",")]
            shown = ", ".join(names[:limit]) + (
                f" and {len(names) - limit} more" if len(names) > limit else ""
            )
            parts.append(f"{keys.group(1).lower()} keys {shown}")
    if mismatches:
        shown = "; ".join(mismatches[:limit])
        more = f" and {len(mismatches) - limit} more" if len(mismatches) > limit else ""
        parts.insert(0, f"shape mismatch for {shown}{more}")
    return "; ".join(parts) if parts else first_line(error)


def weights_file_error(error: BaseException, source: str | Path, what: str = "model") -> CheckpointError:
    """A :class:`CheckpointError` for a weights file that could not be read or does not fit.

    ``RuntimeError`` from ``load_state_dict`` names the mismatched keys; anything else (safetensors'
    ``SafetensorError`` for a truncated or corrupt file, ``OSError``, a bad header) is reported as a
    damaged file with the advice to re-download or re-save it.
    """
    if isinstance(error, RuntimeError) and "state_dict" in str(error):
        return CheckpointError(
            f"{what}: the weights in {source} do not match the architecture in its config.json "
            f"({state_dict_mismatch(error)}); the folder mixes files of different models: save it again"
        )
    return CheckpointError(
        f"{what}: cannot read the weights in {source}: the file is corrupt or truncated "
        f"({first_line(error)}); download or save it again"
    )
