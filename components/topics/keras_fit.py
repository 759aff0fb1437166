"""The one Keras fit helper of the Keras topics (mnist-*, catvar-*, word-embeddings).

Compile, fit with a per-epoch checkpoint from which a rerun continues, save the model dir. Keras
is imported inside the functions because it fixes its backend (TensorFlow or PyTorch) at first
import, from KERAS_BACKEND.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components import progress
from components.epoch_log import EpochLog, run_identity
from components.errors import DlxError
from components.files import atomic_dir, write_json
from components.params import help_field, to_dict

BACKENDS = ("tensorflow", "torch")


@dataclass(frozen=True)
class KerasParams:
    """Hyperparameters every Keras topic has; topics subclass this to add their network's."""

    epochs: int = help_field(20, "passes over the training split")
    batch_size: int = help_field(128, "examples per gradient step")
    learning_rate: float = help_field(1e-3, "initial learning rate")
    optimizer: Literal["adam", "sgd", "rmsprop"] = help_field("adam", "optimiser (sgd uses Nesterov momentum 0.9)")
    lr_schedule: Literal["cosine", "constant"] = help_field("cosine", "learning rate over the run: cosine decay to 0, or constant")
    dropout: float = help_field(0.2, "dropout rate after each hidden layer")
    backend: str = help_field(
        lambda: os.environ.get("KERAS_BACKEND", "tensorflow"),
        "Keras backend: tensorflow or torch (default: $KERAS_BACKEND, else tensorflow)",
        factory=True,
    )

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not '{self.backend}'")


def import_keras(backend: str) -> Any:
    """Import Keras on ``backend``; refuse if this process already runs Keras on another one."""
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != backend:
        raise DlxError(
            f"Keras is already loaded with the {loaded.backend.backend()} backend in this process; "
            f"run with KERAS_BACKEND={backend} set before start-up"
        )
    os.environ["KERAS_BACKEND"] = backend
    import keras

    return keras


def softmax_head(keras: Any, inputs: Any, features: Any, n_classes: int, name: str) -> Any:
    """Close a classifier: class probabilities from ``features``, as a named keras.Model."""
    outputs = keras.layers.Dense(n_classes, activation="softmax")(features)
    return keras.Model(inputs, outputs, name=name)


def _optimizer(keras: Any, params: KerasParams, total_steps: int) -> Any:
    rate: Any = params.learning_rate
    if params.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(params.learning_rate, decay_steps=total_steps)
    if params.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True)
    if params.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate)
    return keras.optimizers.Adam(rate)


def _backup(keras: Any, directory: Path, stale: bool) -> Any:
    """Keras's backup of weights, optimizer state and epoch, kept after the run ends.

    ``stale``: the epoch log is from another run (or absent), so the backup beside it is too.
    """
    if stale:
        shutil.rmtree(directory, ignore_errors=True)
    return keras.callbacks.BackupAndRestore(str(directory), double_checkpoint=True, delete_checkpoint=False)


def fit_and_save(
    keras: Any, model: Any, train: tuple[Any, np.ndarray], val: tuple[Any, np.ndarray], params: KerasParams,
    seed: int, meta: dict, model_dir: Path, checkpoint_dir: Path | None, *, loss: str, metric: Any, label: str = "",
    also_write: Callable[[Any, Path], None] | None = None,
) -> dict:
    """Compile and fit ``model``, then write model.keras, params.json, history.json and train.json.

    Inputs are whatever the model takes (an array, or a dict of arrays for several inputs);
    ``metric`` is a Keras metric or its name, and the summary reports its last validation value.

    With ``checkpoint_dir`` the weights, optimizer state and epoch log are saved there after
    every epoch, and a rerun of the same run (same parameters, seed and data) continues after
    the last saved epoch; a finished run's checkpoint is kept, so rerunning it trains nothing.
    ``also_write(model, directory)`` adds files to the model dir before it appears.
    """
    (x_train, y_train), (x_val, y_val) = train, val
    metric_name = metric if isinstance(metric, str) else metric.name
    steps = params.epochs * -(-len(y_train) // params.batch_size)
    model.compile(optimizer=_optimizer(keras, params, steps), loss=loss, metrics=[metric])
    print(
        f"training on {len(y_train)} examples, validating on {len(y_val)}; "
        f"{model.count_params():,} parameters; Keras backend {keras.backend.backend()}",
        flush=True,
    )
    if checkpoint_dir is not None:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
    log = EpochLog(checkpoint_dir / "epochs.json" if checkpoint_dir else None, run_identity(params, seed, meta),
                   total=params.epochs, label=label, items_per_epoch=len(y_train))
    # The log comes first so that each epoch's entry is on disk before the backup that it covers.
    callbacks = [keras.callbacks.LambdaCallback(on_epoch_begin=log.on_epoch_begin, on_epoch_end=log.on_epoch_end)]
    if checkpoint_dir is not None:
        callbacks.append(_backup(keras, checkpoint_dir / "keras", stale=log.epochs == 0))
    model.fit(
        x_train, y_train,
        validation_data=(x_val, y_val),
        epochs=params.epochs,
        batch_size=params.batch_size,
        verbose=2,
        callbacks=callbacks,
    )
    if log.first_epoch is None:
        text = f"{label + ': ' if label else ''}the checkpoint in {checkpoint_dir} holds all {params.epochs} epochs; " \
               "nothing left to train"
        print(text, flush=True)
        progress.note(text)
    seconds = log.seconds_before() + time.perf_counter() - log.started
    summary = {
        "train_seconds": round(seconds, 2),
        "samples_per_second": round(params.epochs * len(y_train) / seconds, 1),
        "parameters": int(model.count_params()),
        "backend": keras.backend.backend(),
        "seed": seed,
        f"val_{metric_name}": log.history[f"val_{metric_name}"][-1],
    }
    with atomic_dir(model_dir) as tmp:
        model.save(tmp / "model.keras")
        write_json(tmp / "params.json", to_dict(params))
        write_json(tmp / "history.json", log.history)
        write_json(tmp / "train.json", summary)
        if also_write is not None:
            also_write(model, tmp)
    return summary
