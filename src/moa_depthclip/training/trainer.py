"""The training loop: composite loss, AdamW + warm-up/cosine, clipping, accumulation, bf16, DDP,
checkpoints with exact resume, best-model tracking, TensorBoard and progress bars.

Exactness: the data order and augmentation are functions of (seed, epoch, index) (see
``training.data``), the checkpoint holds the optimizer, scheduler, every process's RNG state and the
data position (epoch, step within the epoch), so N steps + resume + N steps equals 2N steps.

Run directory::

    train_config.yaml     the full configuration of the run
    checkpoints/          resumable checkpoints (see ``training.checkpoint``)
    final/ best/          ``save_pretrained`` folders: load with ``MoADepthCLIP.from_pretrained``
    best.json             the validation metrics of ``best/``
    metrics.jsonl         one JSON line per logged step / validation (the curves of the report)
    tensorboard/          scalars (loss terms, learning rates, throughput, validation) and panels
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from moa_depthclip.config import ModelConfig, upgrade_model_dict
from moa_depthclip.data.statistics import median_valid_depth
from moa_depthclip.model.moa_depthclip import MoADepthCLIP
from moa_depthclip.training import checkpoint as ckpt
from moa_depthclip.training import distributed
from moa_depthclip.training.config import TrainConfig
from moa_depthclip.training.data import (
    ShardedBatchSampler,
    build_datasets,
    collate,
    seeded_generator,
    training_view,
)
from moa_depthclip.training.losses import CompositeLoss
from moa_depthclip.training.optim import build_optimizer, build_scheduler

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    random_init: bool
    best: dict[str, Any] | None
    last_validation: dict[str, float] | None
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def set_threads(threads: int | None, local_world_size: int = 1) -> int:
    """One compute thread per core, shared out among the processes of this machine."""
    count = threads if threads else max(1, (os.cpu_count() or 1) // max(1, local_world_size))
    torch.set_num_threads(count)
    return count


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision == "bf16":
        return True
    if precision == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    return False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """``run.deterministic``: deterministic kernels where PyTorch has them (cuDNN without autotuning,
    ``torch.use_deterministic_algorithms``), so that reruns and resumes repeat on GPUs as on CPUs.

    Operations without a deterministic implementation warn instead of failing the run. cuBLAS needs
    ``CUBLAS_WORKSPACE_CONFIG`` set before its first use; it is set here unless already given.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def save_model_folder(model: MoADepthCLIP, folder: Path) -> None:
    """``save_pretrained`` into a temporary sibling, then swap it into place (never half-written)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Trainer:
    """Build everything from a :class:`TrainConfig` and run it with :meth:`train`.

    ``model`` overrides building from ``config.model`` (e.g. the demo's choice of CLIP weights);
    ``resume`` is None, ``"auto"`` or a checkpoint / run directory path; ``datasets`` (train,
    validation) overrides building them from ``config.data``. ``log`` receives the progress lines
    (default: this module's ``logging`` logger at INFO).

    ``config`` is never changed: ``self.config`` is a copy that records what the run actually uses
    (the model's configuration with the CLIP shape that was loaded, the loss's ``max_depth`` from
    the depth head), and is what ``train_config.yaml`` and the checkpoints hold.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        resume: str | None = None,
        model: MoADepthCLIP | None = None,
        log: Callable[[str], None] | None = None,
        datasets: tuple[Dataset, Dataset] | None = None,
    ) -> None:
        config = copy.deepcopy(config)
        self.config = config
        self.run_dir = Path(run_dir)
        self.dist = distributed.setup(config.run.device)
        self.log = (log or logger.info) if self.dist.is_main else (lambda message: None)
        set_deterministic(config.run.deterministic)
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world_size))
        self.threads = set_threads(config.run.threads, local_world)
        self.device = self.dist.device
        self.bf16 = use_bf16(config.run.precision, self.device)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.remove_crash_leftovers(self.run_dir)

        found = ckpt.resolve_resume(resume, self.run_dir) if (resume and self.dist.is_main) else None
        found = distributed.broadcast_object(str(found) if found else None, self.dist)
        checkpoint = ckpt.load_checkpoint(found) if found else None
        if resume and checkpoint is None:
            self.log(f"no checkpoint in {self.run_dir} yet: starting a new run")

        seed_everything(config.run.seed)
        self.model = self._build_model(model, checkpoint).to(self.device)
        # The copy records what is used: the CLIP shape loaded, the head's depth range for the loss.
        config.model = copy.deepcopy(self.model.config)
        config.loss = dataclasses.replace(config.loss, max_depth=self.model.config.head.max_depth)
        self.loss = CompositeLoss(config.loss, self.model.head.edges).to(self.device)
        train_base, self.val_set = datasets if datasets is not None else build_datasets(config.data)
        if checkpoint is None and config.optim.init_depth_prior:
            # Same data and seed on every rank, so every rank computes the same prior.
            prior = median_valid_depth(train_base, max_images=64, max_depth=config.loss.max_depth)
            self.model.head.set_depth_prior(prior)
            self.log(f"depth head starts at the training median, {prior:.2f} m")
        self.train_model: nn.Module = self.model
        if self.dist.distributed:
            # Depthwise-conv weights (C, 1, k, k) have ambiguous strides; DDP warns but copies correctly.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=device_ids)

        self.train_set = training_view(train_base, config.data, config.run.seed)
        self.sampler = ShardedBatchSampler(
            len(self.train_set),
            config.data.batch_size,
            self.dist.world_size,
            self.dist.rank,
            config.optim.accumulation_steps,
            config.run.seed,
        )
        self.optimizer = build_optimizer(self.model, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.run.max_steps, config.optim)
        self.step, self.epoch, self.step_in_epoch = 0, 0, 0
        self.best: dict[str, Any] | None = None
        self.last_validation: dict[str, float] | None = None
        self.history: list[dict[str, Any]] = []
        self._writer: Any = None
        if checkpoint is not None:
            self._restore(checkpoint)
        elif self.dist.is_main:
            (self.run_dir / "train_config.yaml").write_text(config.to_yaml())

    # ---------------------------------------------------------------------------------------------
    # construction and restore

    def _build_model(self, model: MoADepthCLIP | None, checkpoint: ckpt.Checkpoint | None) -> MoADepthCLIP:
        if checkpoint is not None:
            built = MoADepthCLIP(ModelConfig.from_dict(upgrade_model_dict(checkpoint.config["model"])))
            try:
                built.load_state_dict(checkpoint.model_state)
            except RuntimeError as error:
                from moa_depthclip.errors import weights_file_error

                raise weights_file_error(error, checkpoint.path, "checkpoint") from None
            return built
        if model is not None:
            return model
        return MoADepthCLIP.from_clip(copy.deepcopy(self.config.model))

    def _restore(self, checkpoint: ckpt.Checkpoint) -> None:
        state = checkpoint.state
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        data = state["data"]
        if data["global_batch"] != self.sampler.global_batch or data["sampler_seed"] != self.sampler.seed:
            self.log(
                "warning: the global batch or seed changed since the checkpoint; the data order "
                "continues from the same epoch but is not the one of an uninterrupted run"
            )
        self.step, self.epoch, self.step_in_epoch = state["step"], data["epoch"], data["step_in_epoch"]
        if self.step_in_epoch >= self.sampler.steps_per_epoch:
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
        self.best = state.get("best")
        rng = state["rng"]
        if len(rng) == self.dist.world_size:
            ckpt.set_rng_state(rng[self.dist.rank])
        else:
            self.log(
                f"warning: checkpoint from {len(rng)} processes, now {self.dist.world_size}: RNG reseeded"
            )
            seed_everything(self.config.run.seed + self.step * 1000 + self.dist.rank)
        if self.dist.is_main:
            _truncate_metrics(self.run_dir / "metrics.jsonl", self.step)
        self.log(f"resumed from {checkpoint.path} at step {self.step} (epoch {self.epoch})")

    # ---------------------------------------------------------------------------------------------
    # the loop

    def train(self, stop_at_step: int | None = None, time_limit_s: float | None = None) -> TrainResult:
        """Train to ``run.max_steps``, or stop early at ``stop_at_step`` (leaving a checkpoint to resume
        from, e.g. to test resuming); ``time_limit_s`` ends the run (as finished) when time is up."""
        started = time.perf_counter()
        max_steps = self.config.run.max_steps
        end = min(max_steps, stop_at_step) if stop_at_step is not None else max_steps
        self.train_model.train()
        self.log(self._describe())
        progress = self._progress_bar(end)
        self._window = (time.perf_counter(), 0)  # throughput: start of the window, images since
        out_of_time = False
        while self.step < end and not out_of_time:
            out_of_time = self._run_epoch(end, progress, started, time_limit_s)
        if progress is not None:
            progress.close()
        if self.step >= max_steps or out_of_time:
            self._finish()
        else:
            self.save_checkpoint()
        if self._writer is not None:
            self._writer.flush()
        return TrainResult(
            run_dir=self.run_dir,
            steps=self.step,
            random_init=self.model.is_random_init,
            best=self.best,
            last_validation=self.last_validation,
            seconds=time.perf_counter() - started,
            history=self.history,
        )

    def _run_epoch(self, end: int, progress: Any, started: float, time_limit_s: float | None) -> bool:
        """Optimizer steps until the epoch or the run (``end``) ends; True when time ran out."""
        config = self.config
        self.sampler.set_position(self.epoch, self.step_in_epoch)
        loader = DataLoader(
            self.train_set,
            batch_sampler=self.sampler,
            num_workers=config.data.num_workers,
            collate_fn=collate,
            generator=seeded_generator(config.run.seed, self.epoch, 1),
            pin_memory=self.device.type == "cuda",
        )
        batches = iter(loader)
        while self.step < end:
            terms, names = self._optimizer_step(batches)
            self.step += 1
            self.step_in_epoch += 1
            epoch_ended = self.step_in_epoch >= self.sampler.steps_per_epoch
            if epoch_ended:
                self.epoch, self.step_in_epoch = self.epoch + 1, 0
            self.history.append({"step": self.step, "epoch": self.epoch, "names": names, **terms})
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{terms['total']:.3f}", epoch=self.epoch)
            self._after_step(terms, end, epoch_ended)
            if time_limit_s is not None and self.step < end and self._time_is_up(started, time_limit_s):
                return True
            if epoch_ended:
                break
        return False

    def _after_step(self, terms: dict[str, float], end: int, epoch_ended: bool) -> None:
        """What is due after an optimizer step: scalars, panels, validation, checkpoint."""
        run = self.config.run
        window_start, window_images = self._window
        window_images += self.sampler.global_batch
        if self.step % run.log_every == 0 or self.step == end:
            elapsed = time.perf_counter() - window_start
            self._log_scalars(terms, window_images / max(elapsed, 1e-9))
            window_start, window_images = time.perf_counter(), 0
        self._window = (window_start, window_images)
        if run.image_every and self.step % run.image_every == 0:
            self._log_panels()
        due_val = (run.val_every and self.step % run.val_every == 0) or (not run.val_every and epoch_ended)
        if due_val and self.step < run.max_steps:
            self._validate()
        due_ckpt = (run.checkpoint_every and self.step % run.checkpoint_every == 0) or (
            not run.checkpoint_every and epoch_ended
        )
        if due_ckpt and self.step < end:
            self.save_checkpoint()

    def _time_is_up(self, started: float, time_limit_s: float) -> bool:
        """Rank 0's clock decides, so that every process stops at the same step."""
        expired = time.perf_counter() - started > time_limit_s
        if bool(distributed.broadcast_object(expired, self.dist)):
            self.log(f"time limit reached after {self.step} steps: finishing the run")
            return True
        return False

    def _optimizer_step(self, batches: Any) -> tuple[dict[str, float], list[str]]:
        """Accumulate ``accumulation_steps`` micro-batches, clip, step; returns mean loss terms."""
        accumulation = self.config.optim.accumulation_steps
        sums: dict[str, float] = {}
        names: list[str] = []
        for micro in range(accumulation):
            batch = next(batches)
            images = batch["image"].to(self.device, non_blocking=True)
            depth = batch["depth"].to(self.device, non_blocking=True)
            names.extend(batch["name"])
            sync = micro == accumulation - 1 or not self.dist.distributed
            context = contextlib.nullcontext() if sync else self.train_model.no_sync()
            with context:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    output = self.train_model(images)
                total, terms = self.loss(output, depth)
                (total / accumulation).backward()
            for name, value in {"total": total, **terms}.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach()) / accumulation
        clip = self.config.optim.grad_clip
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else math.inf)
        sums["grad_norm"] = float(grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return sums, names

    # ---------------------------------------------------------------------------------------------
    # validation, checkpoints, final model

    def _validate(self) -> dict[str, float] | None:
        metrics = None
        if self.dist.is_main and len(self.val_set) > 0:
            from moa_depthclip.training.validation import validate

            metrics = validate(self.model, self.val_set, self.config.data.val_protocol, self.device)
            self.last_validation = metrics
            self._write_metrics({"step": self.step, **{f"val/{k}": v for k, v in metrics.items()}})
            writer = self._tensorboard()
            if writer is not None:
                for name, value in metrics.items():
                    writer.add_scalar(f"val/{name}", value, self.step)
            self._update_best(metrics)
            shown = ", ".join(f"{k} {metrics[k]:.3f}" for k in ("abs_rel", "delta1", "rmse") if k in metrics)
            self.log(f"step {self.step}: validation {shown}")
        self.best = distributed.broadcast_object(self.best, self.dist)
        distributed.barrier(self.dist)
        return metrics

    def _update_best(self, metrics: dict[str, float]) -> None:
        name, mode = self.config.run.best_metric, self.config.run.best_mode
        value = metrics.get(name)
        if value is None or not math.isfinite(value):
            return
        better = self.best is None or (
            value < self.best["value"] if mode == "min" else value > self.best["value"]
        )
        if better:
            self.best = {"metric": name, "value": value, "step": self.step, "metrics": metrics}
            self.model.model_card_info = self._card_info(metrics)
            save_model_folder(self.model, self.run_dir / "best")
            ckpt.atomic_write_text(self.run_dir / "best.json", json.dumps(self.best, indent=2) + "\n")

    def save_checkpoint(self) -> Path | None:
        """Write a resumable checkpoint (rank 0 writes; every rank contributes its RNG state)."""
        rng = distributed.gather_objects(ckpt.rng_state(), self.dist)
        path = None
        if self.dist.is_main:
            state = {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": rng,
                "data": {
                    "epoch": self.epoch,
                    "step_in_epoch": self.step_in_epoch,
                    "sampler_seed": self.sampler.seed,
                    "global_batch": self.sampler.global_batch,
                    "world_size": self.dist.world_size,
                },
                "best": self.best,
            }
            config = {"model": self.model.config.to_dict(), "train": self.config.to_dict()}
            path = ckpt.save_checkpoint(
                self.run_dir, self.step, self.model, config, state, keep=self.config.run.keep_checkpoints
            )
        distributed.barrier(self.dist)
        return path

    def _card_info(self, metrics: dict[str, float] | None) -> dict[str, Any]:
        """What the saved model's card (``moa_depthclip.model_card``) says about its training."""
        data = self.config.data
        training = {
            "dataset": data.dataset,
            "steps": self.step,
            "batch_size": data.batch_size * self.dist.world_size * self.config.optim.accumulation_steps,
            "crop_size": list(data.crop_size) if data.crop_size else "full image",
            "run_folder": self.run_dir.name,
        }
        info: dict[str, Any] = {"training": training}
        if metrics:
            info["evaluation"] = {
                "protocol": f"`{data.val_protocol}` on the validation split, during training",
                "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
            }
        return info

    def _finish(self) -> None:
        self._validate()
        self.save_checkpoint()
        if self.dist.is_main:
            self.model.model_card_info = self._card_info(self.last_validation)
            save_model_folder(self.model, self.run_dir / "final")
            if self.best is None:  # no usable validation: the final model is the best we have
                save_model_folder(self.model, self.run_dir / "best")
        distributed.barrier(self.dist)

    # ---------------------------------------------------------------------------------------------
    # logging

    def _describe(self) -> str:
        report = self.model.parameter_report()
        weights = (
            "RANDOM initialisation (no pretrained CLIP found)"
            if self.model.is_random_init
            else "pretrained CLIP"
        )
        return (
            f"training MoA-DepthCLIP ({weights}); trainable {report['trainable_parameters']:,} of "
            f"{report['total_parameters']:,} parameters; {len(self.train_set)} training samples, "
            f"global batch {self.sampler.global_batch} ({self.dist.world_size} process(es)), "
            f"{self.sampler.steps_per_epoch} steps/epoch, {self.config.run.max_steps} steps; device "
            f"{self.device}, {'bf16' if self.bf16 else 'fp32'}, {self.threads} thread(s)"
        )

    def _progress_bar(self, end: int) -> Any:
        if not (self.dist.is_main and self.config.run.progress):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=end, initial=self.step, desc="train", unit="step", dynamic_ncols=True)

    def _tensorboard(self) -> Any:
        if not self.dist.is_main:
            return None
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.step + 1)
        return self._writer

    def _log_scalars(self, terms: dict[str, float], images_per_second: float) -> None:
        if not self.dist.is_main:
            return
        lrs = {
            f"lr/{g['name']}": g["lr"]
            for g in self.optimizer.param_groups
            if not g["name"].endswith("_no_decay")
        }
        losses = {f"loss/{k}": v for k, v in terms.items() if k != "grad_norm"}
        record = {"step": self.step, **losses, "grad_norm": terms["grad_norm"], **lrs}
        record["images_per_s"] = images_per_second
        self._write_metrics(record)
        writer = self._tensorboard()
        for name, value in record.items():
            if name != "step":
                writer.add_scalar(name, value, self.step)

    def _write_metrics(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")

    @torch.no_grad()
    def _log_panels(self, count: int = 2) -> None:
        if not self.dist.is_main or len(self.val_set) == 0:
            return
        from moa_depthclip.model.prediction import predict_batch
        from moa_depthclip.visualize import make_panel

        writer = self._tensorboard()
        self.model.eval()
        try:
            for index in range(min(count, len(self.val_set))):
                sample = self.val_set[index]
                image = sample["image"]
                pred = predict_batch(self.model, image[None], long_side=None)[0]
                panel = make_panel(image, sample["depth"], pred.cpu(), titles={})
                writer.add_image(f"panel/{index}", panel, self.step, dataformats="HWC")
        finally:
            self.model.train()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after ``step`` by a run that crashed before its next checkpoint, and lines
    that are not complete JSON (a write cut short by a full disk or a kill)."""
    if not path.is_file():
        return
    kept, damaged = [], 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            record = None
            damaged += 1
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    if damaged:
        logger.warning("%s: dropped %d incomplete line(s) (an interrupted write)", path, damaged)
    ckpt.atomic_write_text(path, "".join(line + "\n" for line in kept))


def run_training(
    config: TrainConfig,
    run_dir: str | Path,
    resume: str | None = None,
    model: MoADepthCLIP | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train and always leave the process group cleanly (the entry point of ``moa-depthclip train``).

    A new run (no ``resume``) in a folder that already holds one is refused unless ``overwrite``,
    which deletes the old run first (see ``checkpoint.prepare_run_dir``).
    """
    try:
        # Every process checks before the process group forms, so that all stop on a refusal.
        ckpt.prepare_run_dir(run_dir, resume, overwrite, delete=int(os.environ.get("RANK", "0")) == 0)
        return Trainer(config, run_dir, resume=resume, model=model).train()
    finally:
        distributed.teardown()


__all__ = ["TrainResult", "Trainer", "run_training", "save_model_folder"]
