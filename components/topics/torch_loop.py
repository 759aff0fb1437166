"""The one resumable training loop of the PyTorch topics, and what they share around it.

pytorch-gd, cf-gd, cf-regularized, rnn and text-gen all train through ``TrainLoop``: it restores
the last checkpoint, runs the epochs (autocast on CUDA, gradient clipping, a step-size schedule, a
wall-clock budget), scores each epoch, logs and prints it with its throughput, and checkpoints
after it. What stays with a topic is what it teaches: its model and loss, its batches and, for
pytorch-gd and cf-gd, its hand-written optimiser (components.topics.optimizers).

Resume is exact: the topics draw every random number from (seed, epoch), and the checkpoint holds
the tensors, the optimiser and loss-scaler state, the step counter and whatever a topic adds
(early stopping's best epoch, text-gen's samples), so a resumed run repeats the uninterrupted one
bit for bit on the CPU.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from components import distributed, progress
from components.epoch_log import EpochLog, plain_words
from components.errors import DlxError
from components.files import atomic_dir, write_json
from components.params import help_field, to_dict

STATE_FILE = "state.pt"
MODEL_FILE = "model.pt"
_LOOP_STATE = ("step", "step_seconds", "items", "stopped", "scaler", "step_losses")
STEP_RECORDS = 25
"""About this many training-loss records per epoch (step_losses): a curve even for a run of one epoch."""
"""What the loop itself keeps in a checkpoint, beside the tensors, the optimiser and the topic's extras."""


@dataclass(frozen=True)
class TorchParams:
    """Where and how precisely a PyTorch topic trains; every PyTorch topic's parameters extend this."""

    device: Literal["auto", "cpu", "cuda"] = help_field("auto", "where to train: auto picks CUDA when present")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = help_field(
        "auto", "autocast: auto is bf16 on CUDA (fp16 with loss scaling without bf16), fp32 on the CPU")


@dataclass(frozen=True)
class Batch:
    """One optimisation step's input: ``loss(*inputs)`` is its mean loss over ``size`` examples;
    ``items`` is what the throughput counts (ratings, sequences, characters)."""

    inputs: tuple
    size: int
    items: int


def pick_device(requested: str) -> str:
    """``auto`` picks CUDA when torch sees it; asking for CUDA without it is a user error, not a crash."""
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise DlxError(f"device=cuda was asked for but CUDA is not available to torch {torch.__version__}; "
                       "use device=auto or device=cpu")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested
    distributed.start(device)  # under torchrun: before the topic puts anything on a GPU
    return device


def autocast_dtype(precision: str, device: str, cudnn_rnn: bool = False, cpu_bf16: bool = False) -> Any:
    """The autocast dtype for ``precision`` on ``device``; None runs in float32.

    ``auto`` is bfloat16 on CUDA (float32's range, so no loss scaling) where the GPU has it and,
    for cuDNN's LSTM/GRU kernels (``cudnn_rnn``), where cuDNN takes it (from 9.13,
    pytorch/pytorch#164411); float16 with a gradient scaler otherwise. On the CPU it is float32,
    or with ``cpu_bf16`` (a topic whose time goes to matrix products that tolerate bfloat16) bfloat16
    where the CPU multiplies it in hardware (AMX tiles, Intel Xeon from Sapphire Rapids), which
    oneDNN's bfloat16 kernels use and float32 ones cannot.
    """
    import torch

    if precision == "fp32":
        return None
    if precision == "auto":
        if device != "cuda":
            return torch.bfloat16 if cpu_bf16 and device == "cpu" and cpu_has_bf16_units() else None
        cudnn_bf16 = not cudnn_rnn or (torch.backends.cudnn.version() or 0) >= 91300
        return torch.bfloat16 if torch.cuda.is_bf16_supported() and cudnn_bf16 else torch.float16
    if precision == "fp16" and device != "cuda":
        raise DlxError("precision=fp16 needs CUDA; use precision=bf16 or fp32 on the CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def cpu_has_bf16_units() -> bool:
    """Whether this CPU has AMX tiles, the matrix units oneDNN runs bfloat16 products on (torch's
    own probe; a torch without it answers no)."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


def autocast(device: str, dtype: Any) -> Any:
    import torch

    return torch.autocast(device_type=device, dtype=dtype) if dtype is not None else contextlib.nullcontext()


@contextlib.contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` (0: left alone) for the block, then restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def open_log(checkpoint_dir: Path | None, run: dict, **shown: Any) -> EpochLog:
    """The run's epoch log, kept in ``checkpoint_dir`` when there is one (created if missing);
    ``shown``: how its progress events describe the run (EpochLog)."""
    if checkpoint_dir is None:
        return EpochLog(None, run, **shown)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return EpochLog(checkpoint_dir / "epochs.json", run, **shown)


def save_state(checkpoint_dir: Path | None, epochs_done: int, tensors: Mapping[str, Any], optimizer: Any,
               **extra: Any) -> None:
    """Written to a temp file and renamed, so a kill mid-save leaves the previous epoch's state."""
    import torch

    if checkpoint_dir is None or not distributed.is_main():
        return
    path = checkpoint_dir / STATE_FILE
    partial = path.with_name(path.name + ".partial")
    torch.save({"epoch": epochs_done, "tensors": {k: t.detach() for k, t in tensors.items()},
                "optimizer": optimizer.state_dict(), "extra": extra}, partial)
    partial.replace(path)


def restore_state(checkpoint_dir: Path | None, log: EpochLog, tensors: Mapping[str, Any], optimizer: Any,
                  device: str) -> tuple[int, dict]:
    """Load the saved state into ``tensors`` and ``optimizer``; return (epoch to start from, extra).

    (0, {}) when there is nothing to resume. The epoch log is written before the state each
    epoch, so an empty log (another run's, or none) means any state beside it is stale.
    """
    import torch

    path = checkpoint_dir / STATE_FILE if checkpoint_dir is not None else None
    if path is None or not log.epochs or not path.is_file():
        return 0, {}
    state = torch.load(path, map_location=device, weights_only=True)
    with torch.no_grad():
        for name, tensor in tensors.items():
            tensor.copy_(state["tensors"][name])
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"], state["extra"]


def train_seconds(log: EpochLog) -> float:
    """Training time of the whole run, earlier (interrupted) attempts included."""
    return log.seconds_before() + time.perf_counter() - log.started


def set_learning_rate(optimizer: Any, rate: float) -> None:
    """torch.optim keeps the rate in its param groups, the hand-written optimisers in ``lr``."""
    groups = getattr(optimizer, "param_groups", None)
    if groups is None:
        optimizer.lr = rate
        return
    for group in groups:
        group["lr"] = rate


def train_val_words(figures: Mapping[str, float]) -> str:
    """An epoch's figures as training and validation scores: ``train rmse 0.91  val rmse 0.95``."""
    return "  ".join(f"{name.replace('val_', 'val ') if name.startswith('val_') else 'train ' + name} {value:.4f}"
                     for name, value in figures.items())


def parameter_count(tensors: Mapping[str, Any]) -> int:
    return sum(t.numel() for t in tensors.values() if t.requires_grad)


def write_model_dir(model_dir: Path, tensors: Mapping[str, Any], params: Any, history: dict, summary: dict) -> None:
    """model.pt (a state_dict of CPU tensors), params.json, history.json, train.json, all or nothing."""
    import torch

    with atomic_dir(model_dir) as tmp:
        torch.save({k: t.detach().cpu() for k, t in tensors.items()}, tmp / MODEL_FILE)
        write_json(tmp / "params.json", to_dict(params))
        write_json(tmp / "history.json", history)
        write_json(tmp / "train.json", summary)


class TrainLoop:
    """Epochs of optimisation steps over ``tensors`` (a state_dict, or a model's with ``module``),
    continuing after the last epoch saved in ``checkpoint_dir``.

    ``run`` identifies the run: a checkpoint of another run is never resumed. ``extra`` holds what
    the topic keeps in the checkpoint beside the loop's own state (restored when resuming).
    ``steps_per_epoch`` plans a step-size schedule; ``budget_minutes`` (0: none) ends training
    after that much time, earlier attempts counted.
    """

    def __init__(self, tensors: Mapping[str, Any], optimizer: Any, *, epochs: int, device: str,
                 checkpoint_dir: Path | None, run: dict, module: Any = None, precision: str = "fp32",
                 cudnn_rnn: bool = False, cpu_bf16: bool = False, clip: float = 0.0,
                 clip_grad: Callable[[list, float], Any] | None = None,
                 steps_per_epoch: int = 0, budget_minutes: float = 0.0, unit: str = "examples", tag: str = "",
                 divergence_hint: str = "lower learning_rate") -> None:
        import torch

        self.tensors, self.optimizer, self.module = tensors, optimizer, module
        self.epochs, self.device, self.checkpoint_dir = epochs, device, checkpoint_dir
        self.dtype = autocast_dtype(precision, device, cudnn_rnn, cpu_bf16)
        self.parameters = list(module.parameters()) if module is not None else [
            t for t in tensors.values() if t.requires_grad]
        self.clip, self.clip_grad = clip, clip_grad or torch.nn.utils.clip_grad_norm_
        self.steps_per_epoch, self.budget = steps_per_epoch, budget_minutes * 60
        self.unit, self.tag, self.divergence_hint = unit, tag, divergence_hint
        self.scaler = torch.amp.GradScaler(device, enabled=self.dtype == torch.float16)
        self.log = open_log(checkpoint_dir, run, total=epochs, label=tag.rstrip(": "), unit=unit)
        self.start, saved = restore_state(checkpoint_dir, self.log, tensors, optimizer, device)
        if saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        self.step, self.step_seconds = saved.get("step", 0), saved.get("step_seconds", 0.0)
        self.items, self.stopped = saved.get("items", 0), saved.get("stopped", False)
        self.step_losses: list[list[float]] = saved.get("step_losses", [])
        """[step, mean training loss since the previous record], every ``record_every`` steps."""
        self.record_every = max(1, steps_per_epoch // STEP_RECORDS) if steps_per_epoch else STEP_RECORDS
        self.extra = {k: v for k, v in saved.items() if k not in _LOOP_STATE}
        self.rate: float | None = None
        self.budget_spent = False
        self.world = distributed.world()[1]

    @property
    def precision(self) -> str:
        return str(self.dtype).removeprefix("torch.") if self.dtype is not None else "fp32"

    @property
    def seconds(self) -> float:
        return train_seconds(self.log)

    def progress(self) -> float:
        """How far through the planned training (0..1): the larger of the step and the time fraction."""
        planned = self.epochs * self.steps_per_epoch
        return max(self.step / planned if planned else 0.0, self.seconds / self.budget if self.budget else 0.0)

    def fit(self, batches: Callable[[int], Iterable[Batch]], loss: Callable[..., Any],
            scores: Callable[[float], dict[str, float]] | None = None, *,
            learning_rate: Callable[[float], float] | None = None,
            before_step: Callable[[float | None], None] | None = None,
            end_epoch: Callable[[int, dict[str, float]], str | None] | None = None,
            describe: Callable[[dict[str, float]], str] | None = None) -> None:
        """Train until ``epochs``, the budget, or ``end_epoch`` says stop.

        ``batches(epoch)`` yields the epoch's Batches; ``learning_rate(progress)`` sets the step size
        before each step; ``before_step(rate)`` runs between the backward pass and the update;
        ``scores(mean training loss)`` (run in eval mode without gradients; default: the loss) gives
        the epoch's figures for the log; ``end_epoch(epoch, figures)`` returns a reason to stop
        early, or None; ``describe(figures)`` words them for the progress line.
        """
        import torch

        epoch = self.start
        while epoch < self.epochs and not self.stopped:
            self.log.on_epoch_begin(epoch)
            if self.module is not None:
                self.module.train()
            began = time.perf_counter()
            total, count, items = torch.zeros((), device=self.device), 0, 0
            window, window_count = torch.zeros((), device=self.device), 0
            for batch in batches(epoch):
                if self.budget and distributed.rank_zero_says(self.seconds >= self.budget, self.device):
                    self.stopped = self.budget_spent = True
                    break
                if learning_rate is not None:
                    self.rate = learning_rate(self.progress())
                    set_learning_rate(self.optimizer, self.rate)
                weighted = self._step(batch, loss, before_step)  # this rank's share of the batch's loss sum
                total, window = total + weighted, window + weighted
                count, items, self.step = count + batch.size, items + batch.items, self.step + 1
                window_count += batch.size
                if self.step % self.record_every == 0:
                    self.step_losses.append([self.step, round(float(distributed.total(window)) / window_count, 5)])
                    window, window_count = torch.zeros((), device=self.device), 0
            if not count:
                break
            seconds = time.perf_counter() - began
            self.step_seconds, self.items = self.step_seconds + seconds, self.items + items
            mean = float(distributed.total(total)) / count
            if not math.isfinite(mean):
                raise DlxError(f"{self.tag}training diverged in epoch {epoch + 1} (loss {mean}); "
                               f"{self.divergence_hint}")
            if self.module is not None:
                self.module.eval()
            with torch.no_grad():
                figures = scores(mean) if scores is not None else {"loss": mean}
                self.log.on_epoch_end(epoch, figures, speed=items / seconds)
                reason = end_epoch(epoch, figures) if end_epoch is not None else None
            if self.budget and distributed.rank_zero_says(self.seconds >= self.budget, self.device):  # a resumed run is done
                self.stopped = self.budget_spent = True
            self._print_epoch(epoch, figures, describe, items / seconds)
            if reason:
                self.stopped = True
                self._say(f"{self.tag}stopping early: {reason}")
            epoch += 1
            save_state(self.checkpoint_dir, epoch, self.tensors, self.optimizer, step=self.step,
                       step_seconds=self.step_seconds, items=self.items, stopped=self.stopped,
                       scaler=self.scaler.state_dict(), step_losses=self.step_losses, **self.extra)
        if self.log.first_epoch is None:
            self._say(f"{self.tag}the checkpoint in {self.checkpoint_dir} holds the whole run; nothing left to train")
        if not self.log.epochs:
            raise DlxError(f"budget_minutes={self.budget / 60:g} ended training before its first step; raise it")

    @staticmethod
    def _say(text: str) -> None:
        print(text, flush=True)
        progress.note(text)

    def _step(self, batch: Batch, loss: Callable[..., Any], before_step: Callable[[float | None], None] | None) -> Any:
        """One update: the loss under autocast, its (scaled) gradients, clipping, the optimiser's step.

        Returns the batch's loss sum over the examples this process saw (detached, float32). With
        several processes each takes its slice of the batch, weights its mean loss by its share,
        and the gradients are summed across them (components.distributed)."""
        self.optimizer.zero_grad()
        inputs, share = batch.inputs, 1.0
        if self.world > 1:
            lo, hi = distributed.share(batch.size)
            empty = hi == lo  # a batch smaller than the world: this rank computes one row, weighted 0
            inputs = tuple(distributed.shard(value, batch.size, lo, lo + 1 if empty else hi) for value in inputs)
            share = 0.0 if empty else (hi - lo) / batch.size
        with autocast(self.device, self.dtype):
            value = loss(*inputs)
        self.scaler.scale(value * share if self.world > 1 else value).backward()
        if self.world > 1:
            distributed.sum_gradients(self.parameters)
        if self.clip:
            self.scaler.unscale_(self.optimizer)
            self.clip_grad(self.parameters, self.clip)
        if before_step is not None:
            before_step(self.rate)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return value.detach().float() * (share * batch.size)

    def _print_epoch(self, epoch: int, figures: dict[str, float], describe: Callable[[dict], str] | None,
                     speed: float) -> None:
        shown = (describe or plain_words)(figures)
        budget = f"  {self.seconds / 60:.1f}/{self.budget / 60:g} min" if self.budget else ""
        spent = "  (budget spent)" if self.budget_spent else ""
        print(f"{self.tag}epoch {epoch + 1}/{self.epochs}: {shown}  {speed:,.0f} {self.unit}/s{budget}{spent}",
              flush=True)

    def summary(self, **extra: Any) -> dict:
        """train.json's shared part: time (earlier attempts included), throughput, epochs, device."""
        seconds = self.seconds
        return {"train_seconds": round(seconds, 2), "samples_per_second": round(self.items / seconds, 1),
                "parameters": parameter_count(self.tensors), "device": self.device,
                "precision": self.precision, "epochs_run": self.log.epochs, "processes": self.world, **extra}
