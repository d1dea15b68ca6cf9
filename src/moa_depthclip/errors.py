"""Errors meant for the person running the tool: the message says what is wrong and how to fix it."""

from __future__ import annotations


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
