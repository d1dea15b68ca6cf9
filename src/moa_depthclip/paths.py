"""Output folders checked before any work: a command that cannot write fails first, not last."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from moa_depthclip.errors import OutputError


def writable_dir(path: str | os.PathLike[str], setting: str = "--out") -> Path:
    """Create ``path`` (with its parents) and prove that a file can be written in it.

    Raises :class:`OutputError` naming ``setting`` when the folder cannot be created or written
    (read-only file system, no permission, a file in the way), so that commands fail before
    spending minutes on work whose results could not be saved.
    """
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        if isinstance(error, (FileExistsError, NotADirectoryError)):
            reason = "a file is in the way: part of the path is a file, not a folder"
        raise OutputError(
            f"{setting} {folder}: cannot write there ({reason}); choose a folder you can write to"
        ) from None
    return folder
