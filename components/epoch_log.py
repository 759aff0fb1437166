"""The per-epoch history of a checkpointed training run, so that a resumed run reports all epochs.

Shared by every trainer that checkpoints (the Keras fit helper and the PyTorch loop, each with its
own state files): the log is written before the checkpoint each epoch, so it never lags it.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from components import distributed, progress
from components.files import read_json, write_json
from components.params import to_dict

_RUN_DATA = ("dataset", "inputs", "splits", "seed", "protocol")
"""The data set's meta.json entries that identify the data a run trains on."""


def plain_words(figures: Mapping[str, float]) -> str:
    """An epoch's figures as they are named: ``loss 0.1234  val_loss 0.2345``."""
    return "  ".join(f"{name} {value:.4f}" for name, value in figures.items())


def run_identity(params: object, seed: int, meta: dict) -> dict:
    """What identifies a run in its epoch log: a checkpoint of another run (other parameters, seed or
    data) is never resumed."""
    return {"params": to_dict(params), "seed": seed, **{key: meta.get(key) for key in _RUN_DATA}}


class EpochLog:
    """Per-epoch metrics and training time, kept on disk beside a trainer's checkpoint.

    A checkpoint restores weights, optimizer state and the epoch counter but not the history, so
    without this a resumed run would report only its own epochs. This log is written before the
    checkpoint each epoch (so it never lags it) and cut back to the restored epoch when fitting
    resumes; ``run`` identifies the run, and a log from another run is ignored.
    """

    def __init__(self, path: Path | None, run: dict, *, total: int = 0, label: str = "", items_per_epoch: int = 0,
                 unit: str = "examples") -> None:
        """``total`` epochs, ``label`` (a fold) and the throughput's ``items_per_epoch`` and ``unit``
        describe the progress events each epoch emits (components.progress)."""
        self.path, self.run = path, run
        self.total, self.label, self.items_per_epoch, self.unit = total, label, items_per_epoch, unit
        self.history: dict[str, list[float]] = {}
        self.elapsed: list[float] = []
        try:
            saved = read_json(path) if path is not None and path.is_file() else {}
        except ValueError:
            saved = {}
        if saved.get("run") == run:
            self.history, self.elapsed = saved["history"], saved["elapsed"]
        self.first_epoch: int | None = None
        self.started = time.perf_counter()

    @property
    def epochs(self) -> int:
        return len(self.elapsed)

    def seconds_before(self) -> float:
        """Training time of the epochs this attempt did not have to run."""
        done = self.first_epoch if self.first_epoch is not None else self.epochs
        return self.elapsed[done - 1] if done else 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch
            self.history = {k: v[:epoch] for k, v in self.history.items()}
            self.elapsed = self.elapsed[:epoch]
            if epoch:
                text = f"{self.label + ': ' if self.label else ''}resuming from the checkpoint after epoch {epoch}"
                print(text, flush=True)
                progress.note(text)

    def on_epoch_end(self, epoch: int, logs: dict | None = None, speed: float | None = None) -> None:
        """Record the epoch's figures; ``speed``: its throughput, when the trainer measured it."""
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        before = self.elapsed[-1] if self.elapsed else self.seconds_before()
        self.elapsed.append(round(self.seconds_before() + time.perf_counter() - self.started, 2))
        if speed is None and self.items_per_epoch and self.elapsed[-1] > before:
            speed = self.items_per_epoch / (self.elapsed[-1] - before)
        progress.epoch(epoch + 1, self.total, logs or {}, label=self.label, speed=speed, unit=self.unit)
        if self.path is not None and distributed.is_main():
            partial = self.path.with_name(self.path.name + ".partial")
            write_json(partial, {"run": self.run, "history": self.history, "elapsed": self.elapsed})
            partial.replace(self.path)
