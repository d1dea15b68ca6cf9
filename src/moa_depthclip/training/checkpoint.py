"""Training checkpoints that survive crashes, resume a run exactly and are never taken for a model.

Layout inside a run directory::

    checkpoints/
      step_00001000/
        checkpoint.safetensors  every persistent model tensor
        checkpoint.json         {"model": ModelConfig, "train": TrainConfig, "step": ...}
        state.pt                optimizer, scheduler, RNG states of every process, data position, best
      latest.json               {"checkpoint": "step_00001000", "step": 1000}

The file names differ from a saved model's (``config.json`` + ``model.safetensors``), so no loader
can mistake a checkpoint for a saved model; :func:`read_checkpoint_model` reads the model part of a
checkpoint for inference. Checkpoints of earlier versions (``config.json`` + ``model.safetensors``
next to ``state.pt``) are still read.

A checkpoint is written into a hidden temporary folder next to its final place; every file and the
folder are fsync'ed, then the folder is renamed into place (atomic on POSIX), and only then is
``latest.json`` replaced (written to a temporary file, fsync'ed, ``os.replace``). A crash at any point
leaves ``latest.json`` naming the previous complete checkpoint; the hidden leftovers of a crash are
removed by :func:`remove_crash_leftovers` when the run starts again.
"""

from __future__ import annotations

import json
import logging
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

from moa_depthclip.errors import CheckpointError, UserFacingError, first_line


class RunExistsError(UserFacingError, FileExistsError):
    """A new run was asked for in a folder that already holds one."""


logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
MODEL_FILE = "checkpoint.safetensors"
CONFIG_FILE = "checkpoint.json"
STATE_FILE = "state.pt"
# Names used by earlier versions (the same as a saved model's); still read.
LEGACY_MODEL_FILE = "model.safetensors"
LEGACY_CONFIG_FILE = "config.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")
# What a run directory holds once a run has started (``train_config.yaml`` first of all).
RUN_ENTRIES = ("train_config.yaml", CHECKPOINTS, "best", "final", "best.json", "metrics.jsonl", "tensorboard")


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


def is_checkpoint_dir(path: str | Path) -> bool:
    """A complete checkpoint folder, in this version's layout or an earlier one's."""
    path = Path(path)
    return (path / STATE_FILE).is_file() and _existing(path, MODEL_FILE, LEGACY_MODEL_FILE) is not None


def _existing(folder: Path, name: str, legacy: str) -> Path | None:
    for candidate in (folder / name, folder / legacy):
        if candidate.is_file():
            return candidate
    return None


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


def remove_crash_leftovers(run_dir: str | Path) -> list[Path]:
    """Delete what interrupted writes leave behind: hidden ``.best.*`` / ``.final.*`` model folders
    (each a full copy of the weights), ``.step_*`` checkpoint folders and ``.*.tmp`` files.

    Only hidden names that this package's atomic writers create are touched; call it when no other
    process writes into the run (the trainer does, at start, on the main process).
    """
    run_dir = Path(run_dir)
    removed: list[Path] = []
    patterns = [(run_dir, ".best.*"), (run_dir, ".final.*"), (run_dir, ".*.tmp")]
    patterns += [(run_dir / CHECKPOINTS, ".step_*"), (run_dir / CHECKPOINTS, ".*.tmp")]
    for folder, pattern in patterns:
        if not folder.is_dir():
            continue
        for stale in folder.glob(pattern):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    if removed:
        logger.info("removed %d leftover(s) of an interrupted write in %s", len(removed), run_dir)
    return removed


def holds_run(run_dir: str | Path) -> list[str]:
    """The entries of a started training run present in ``run_dir`` (empty: a fresh folder)."""
    run_dir = Path(run_dir)
    return [name for name in RUN_ENTRIES if (run_dir / name).exists()]


def prepare_run_dir(
    run_dir: str | Path, resume: str | None, overwrite: bool = False, delete: bool = True
) -> None:
    """Refuse to start a new run over an existing one; ``overwrite`` deletes the old run first.

    A new run in a folder that holds one would mix them: metrics appended to the old curve, the old
    best/ replaced by a worse model, the old checkpoints kept while the new ones are pruned, so that
    a later ``--resume auto`` resumes the old run. Every process of a distributed run checks (so all
    of them stop together); only the one with ``delete`` removes the old files.
    """
    run_dir = Path(run_dir)
    present = holds_run(run_dir)
    if resume or not present or (overwrite and not delete):
        return
    if not overwrite:
        raise RunExistsError(
            f"--out {run_dir} already holds a training run ({', '.join(present)}): continue it with "
            f"--resume auto, replace it with --overwrite (deletes it), or choose another --out"
        )
    for name in present:
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    logger.info("--overwrite: removed the previous run in %s (%s)", run_dir, ", ".join(present))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint ``latest.json`` names, else the highest complete ``step_*`` folder, else None."""
    root = Path(run_dir) / CHECKPOINTS
    pointer = root / LATEST
    if pointer.is_file():
        try:
            name = json.loads(pointer.read_text())["checkpoint"]
        except (ValueError, KeyError, TypeError) as error:
            logger.warning("%s is unreadable (%s): using the newest checkpoint folder", pointer, error)
        else:
            if is_checkpoint_dir(root / str(name)):
                return root / str(name)
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


def read_checkpoint_model(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], int]:
    """The model part of a checkpoint: (ModelConfig dict, tensors, step); ``state.pt`` is not read."""
    path = Path(path)
    config_file = _existing(path, CONFIG_FILE, LEGACY_CONFIG_FILE)
    weights_file = _existing(path, MODEL_FILE, LEGACY_MODEL_FILE)
    if config_file is None or weights_file is None:
        raise CheckpointError(
            f"checkpoint {path} is incomplete: it needs {CONFIG_FILE} and {MODEL_FILE} "
            f"(or {LEGACY_CONFIG_FILE} and {LEGACY_MODEL_FILE} from earlier versions)"
        )
    try:
        config = json.loads(config_file.read_text())
        model_state = load_file(str(weights_file))
    except Exception as error:  # safetensors / JSON errors for damaged files
        raise _unreadable(path, error) from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise CheckpointError(f"{config_file} holds no model configuration: not a training checkpoint")
    return config["model"], model_state, int(config.get("step", 0))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Everything needed to resume: configs, weights and the training state of every process."""
    path = Path(path)
    if not (path / STATE_FILE).is_file():
        raise CheckpointError(
            f"checkpoint {path} is incomplete: {STATE_FILE} is missing{_last_valid_hint(path)}"
        )
    model_config, model_state, _ = read_checkpoint_model(path)
    config_file = _existing(path, CONFIG_FILE, LEGACY_CONFIG_FILE)
    assert config_file is not None  # read_checkpoint_model checked it
    try:
        config = json.loads(config_file.read_text())
        # Our own files: they hold RNG tuples and numpy arrays, so weights_only cannot be used.
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
    except Exception as error:  # pickle / zip errors for a corrupt or truncated file
        raise _unreadable(path, error) from None
    return Checkpoint(path=path, config=config, model_state=model_state, state=state)


def _unreadable(path: Path, error: BaseException) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} cannot be read, a file in it is corrupt or truncated ({first_line(error)})"
        f"{_last_valid_hint(path)}"
    )


def _last_valid_hint(path: Path) -> str:
    """Where to resume from instead of the damaged checkpoint ``path`` (its newest readable sibling)."""
    for _, candidate in reversed(_step_dirs(path.parent)):
        if candidate.resolve() == path.resolve():
            continue
        try:
            read_checkpoint_model(candidate)
            torch.load(candidate / STATE_FILE, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - any failure means "not this one"
            continue
        return f"; the last readable checkpoint is {candidate}: resume with --resume {candidate}"
    return "; no other readable checkpoint is next to it: start again without --resume (or with --overwrite)"
