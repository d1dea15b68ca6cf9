"""Training checkpoints that survive crashes and resume a run exactly.

Layout inside a run directory::

    checkpoints/
      step_00001000/
        model.safetensors   every persistent model tensor
        config.json         {"model": ModelConfig, "train": TrainConfig, "step": ...}
        state.pt            optimizer, scheduler, RNG states of every process, data position, best
      latest.json           {"checkpoint": "step_00001000", "step": 1000}

A checkpoint is written into a hidden temporary folder next to its final place; every file and the
folder are fsync'ed, then the folder is renamed into place (atomic on POSIX), and only then is
``latest.json`` replaced (written to a temporary file, fsync'ed, ``os.replace``). A crash at any point
leaves ``latest.json`` naming the previous complete checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from moa_depthclip.errors import CheckpointError

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "state.pt"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` holds either the old or the new content, never a mix."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def rng_state() -> dict[str, Any]:
    """Every random stream of this process (python, numpy, torch CPU and CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Persistent model state as contiguous CPU tensors (what safetensors accepts)."""
    return {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    model: nn.Module,
    config: dict[str, Any],
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` atomically, point ``latest.json`` at it, prune old ones.

    ``config`` is JSON-serialisable (model and training configuration); ``state`` holds the rest
    (optimizer, scheduler, RNG, data position), saved with ``torch.save``.
    """
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    final = root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    try:
        save_file(model_tensors(model), str(tmp / MODEL_FILE), metadata={"format": "pt"})
        (tmp / CONFIG_FILE).write_text(json.dumps({**config, "step": step}, indent=2, sort_keys=True))
        torch.save(state, tmp / STATE_FILE)
        for file in (MODEL_FILE, CONFIG_FILE, STATE_FILE):
            _fsync_file(tmp / file)
        _fsync_dir(tmp)
        if final.exists():  # re-saving a step (e.g. a resumed run saving again): swap, never delete first
            trash = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=root))
            os.replace(final, trash / name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / LATEST, json.dumps({"checkpoint": name, "step": step}) + "\n")
    _prune(root, keep, protect=name)
    return final


def _step_dirs(root: Path) -> list[tuple[int, Path]]:
    found = []
    if root.is_dir():
        for child in root.iterdir():
            match = _STEP_DIR.match(child.name)
            if match and child.is_dir() and (child / STATE_FILE).is_file():
                found.append((int(match.group(1)), child))
    return sorted(found)


def _prune(root: Path, keep: int, protect: str) -> None:
    for _, path in _step_dirs(root)[: -max(1, keep)]:
        if path.name != protect:
            shutil.rmtree(path, ignore_errors=True)
    for stale in root.glob(".step_*"):  # leftovers of interrupted writes
        shutil.rmtree(stale, ignore_errors=True)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint ``latest.json`` names, else the highest complete ``step_*`` folder, else None."""
    root = Path(run_dir) / CHECKPOINTS
    pointer = root / LATEST
    if pointer.is_file():
        try:
            name = json.loads(pointer.read_text())["checkpoint"]
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointError(
                f"{pointer} is corrupt ({error}); delete it to use the newest folder"
            ) from error
        if (root / name / STATE_FILE).is_file():
            return root / name
    found = _step_dirs(root)
    return found[-1][1] if found else None


def resolve_resume(resume: str, run_dir: str | Path) -> Path | None:
    """``auto``: the run directory's latest checkpoint (None when there is none yet); otherwise a
    checkpoint folder or a run directory (its latest checkpoint)."""
    if resume == "auto":
        return latest_checkpoint(run_dir)
    path = Path(resume).expanduser()
    if (path / STATE_FILE).is_file():
        return path
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is not None:
            return found
    raise CheckpointError(
        f"--resume {resume}: no checkpoint there (expected a run directory with {CHECKPOINTS}/ or a "
        f"folder holding {STATE_FILE}, {MODEL_FILE} and {CONFIG_FILE})"
    )


@dataclass
class Checkpoint:
    path: Path
    config: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    state: dict[str, Any]


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
        model_state = load_file(str(path / MODEL_FILE))
        # Our own files: they hold RNG tuples and numpy arrays, so weights_only cannot be used.
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
    except FileNotFoundError as error:
        raise CheckpointError(f"checkpoint {path} is incomplete: {error}") from error
    except Exception as error:  # safetensors / pickle errors for corrupt files
        raise CheckpointError(f"checkpoint {path} cannot be read: {error}") from error
    return Checkpoint(path=path, config=config, model_state=model_state, state=state)
