"""The one Keras fit helper of the Keras topics (mnist-*, catvar-*, word-embeddings).

Compile, fit with a per-epoch checkpoint from which a rerun continues exactly, save the model dir.
Keras is imported inside the functions because it fixes its backend (TensorFlow or PyTorch) at first
import, from KERAS_BACKEND.
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components import progress
from components.epoch_log import EpochLog, plain_words, run_identity
from components.errors import DlxError
from components.files import atomic_dir, write_json
from components.params import help_field, to_dict

BACKENDS = ("tensorflow", "torch")
EPOCH_DRAWS = 1_000_000
"""How far apart the epochs' random streams start: more draws than any epoch makes."""


@dataclass(frozen=True)
class KerasParams:
    """Hyperparameters every Keras topic has; topics subclass this to add their network's."""

    epochs: int = help_field(20, "passes over the training split", at_least=1)
    batch_size: int = help_field(128, "examples per gradient step", at_least=1)
    learning_rate: float = help_field(1e-3, "initial learning rate", above=0)
    optimizer: Literal["adam", "sgd", "rmsprop"] = help_field("adam", "optimiser (sgd uses Nesterov momentum 0.9)")
    lr_schedule: Literal["cosine", "constant"] = help_field("cosine", "learning rate over the run: cosine decay to 0, or constant")
    dropout: float = help_field(0.2, "dropout rate after each hidden layer", at_least=0, below=1)
    precision: Literal["auto", "fp32", "mixed_bf16", "mixed_fp16"] = help_field(
        "auto", "dtype policy: auto is mixed_bf16 on a GPU with bfloat16 (mixed_fp16 with loss scaling on older ones), "
        "fp32 on the CPU")
    backend: str = help_field(
        lambda: os.environ.get("KERAS_BACKEND", "tensorflow"),
        "Keras backend: tensorflow or torch (default: $KERAS_BACKEND, else tensorflow)",
        factory=True,
    )

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not '{self.backend}'")


POLICIES = {"fp32": "float32", "mixed_bf16": "mixed_bfloat16", "mixed_fp16": "mixed_float16"}


def import_keras(backend: str, precision: str | None = None) -> Any:
    """Import Keras on ``backend``; refuse if this process already runs Keras on another one.

    With ``precision`` (to build a model for training) the global dtype policy is set to it, so the
    layers built next compute in it, and so is the distribution strategy (``_set_replicas``); a
    loaded model keeps the policy it was saved with."""
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != backend:
        raise DlxError(
            f"Keras is already loaded with the {loaded.backend.backend()} backend in this process; "
            f"run with KERAS_BACKEND={backend} set before start-up"
        )
    os.environ["KERAS_BACKEND"] = backend
    import keras

    if precision is not None:
        keras.mixed_precision.set_global_policy(POLICIES[_resolve_precision(keras, precision)])
        _set_replicas(keras)
    return keras


def replica_devices() -> list[str]:
    """The devices a Keras model is mirrored on: every GPU TensorFlow sees."""
    import tensorflow as tf

    return [device.name for device in tf.config.list_logical_devices("GPU")]


def _set_replicas(keras: Any) -> None:
    """With more than one device, the model built next is mirrored on each under
    tf.distribute.MirroredStrategy (each batch split across them, gradients all-reduced), set as
    the default strategy so every topic's build, compile and fit run under it; otherwise the
    default (one device). The PyTorch backend trains on one device."""
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    devices = replica_devices()
    tf.distribute.experimental_set_strategy(tf.distribute.MirroredStrategy(devices) if len(devices) > 1 else None)


def replicas_in_sync(keras: Any) -> int:
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def _resolve_precision(keras: Any, precision: str) -> str:
    """``auto``: mixed precision where a GPU runs it (bfloat16 from compute capability 8), else fp32.
    Keras' compile wraps the optimizer in loss scaling under mixed_fp16."""
    if precision != "auto":
        return precision
    capability = _gpu_capability(keras.backend.backend())
    if capability is None:
        return "fp32"
    return "mixed_bf16" if capability >= (8, 0) else "mixed_fp16"


def _gpu_capability(backend: str) -> tuple[int, int] | None:
    """The first GPU's compute capability, as the backend sees it; None without one."""
    if backend == "torch":
        import torch

        return torch.cuda.get_device_capability(0) if torch.cuda.is_available() else None
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tuple(tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (7, 0)))


def precision_in_use(keras: Any) -> str:
    """The dtype policy training runs in, in the precision parameter's words."""
    name = keras.mixed_precision.global_policy().name
    return {policy: word for word, policy in POLICIES.items()}.get(name, name)


def softmax_head(keras: Any, inputs: Any, features: Any, n_classes: int, name: str) -> Any:
    """Close a classifier: class probabilities from ``features``, as a named keras.Model."""
    outputs = keras.layers.Dense(n_classes, activation="softmax", dtype="float32")(features)  # float32 under mixed
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


class _EpochOrder:
    """The training examples in batches, in an order drawn from (seed, epoch): ``set_epoch`` (called
    as the epoch begins, before fit reads a batch of it) picks the order."""

    def __init__(self, x: Any, y: np.ndarray, batch_size: int, seed: int) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.order = np.arange(len(y))

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        inputs = {name: values[rows] for name, values in self.x.items()} if isinstance(self.x, dict) else self.x[rows]
        return inputs, self.y[rows]

    def set_epoch(self, epoch: int) -> None:
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.y))


def _feeds(keras: Any, order: _EpochOrder, val: tuple[Any, np.ndarray]) -> tuple[Any, Any]:
    """What fit reads: the training batches in ``order`` and the validation split.

    On TensorFlow both are tf.data pipelines with autotuning off: its background tuner, which
    Keras turns on for arrays and PyDatasets, stalls one of two cores for whole epochs at random
    (the same epoch runs at single-core speed or twice that). Elsewhere a PyDataset and the arrays."""
    if keras.backend.backend() != "tensorflow":
        class EpochBatches(keras.utils.PyDataset):
            def __len__(self) -> int:
                return len(order)

            def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
                return order[index]

        return EpochBatches(), val
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    signature = tf.nest.map_structure(lambda a: tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)), order[0])
    batches = tf.data.Dataset.from_generator(lambda: (order[i] for i in range(len(order))), output_signature=signature)
    batches = batches.apply(tf.data.experimental.assert_cardinality(len(order)))
    validation = tf.data.Dataset.from_tensor_slices(val).batch(order.batch_size)
    return batches.with_options(options), validation.with_options(options)


def _seed_epoch(keras: Any, model: Any, seed: int, epoch: int) -> None:
    """Start every random stream training draws from at a point fixed by (seed, epoch).

    On TensorFlow, dropout draws from its layer's SeedGenerator, whose state is (its seed, a counter
    each draw advances): the seed comes from the run's seed at build time, the counter is set here.
    On PyTorch, unseeded dropout draws from torch's global generator, which the global seeds reset.
    So epoch k draws the same numbers whether the run started at epoch 0 or resumed at k."""
    keras.utils.set_random_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    for variable in model.variables:
        if variable.path.endswith("seed_generator_state"):
            first = int(np.asarray(variable.numpy())[0])
            variable.assign(np.array([first, epoch * EPOCH_DRAWS], dtype=variable.dtype))


class _Checkpoint:
    """Weights and optimizer state after each finished epoch, in a file named for the epoch count
    (written whole, then renamed), so what is on disk always says which epoch it holds."""

    def __init__(self, directory: Path | None, log: EpochLog) -> None:
        self.directory, self.log = directory, log

    def _saved(self) -> dict[int, Path]:
        if self.directory is None:
            return {}
        return {int(path.name.split(".")[0].removeprefix("epoch-")): path
                for path in self.directory.glob("epoch-*.weights.h5")}

    def restore(self, model: Any) -> int:
        """Load the newest state the epoch log covers; the number of epochs it holds (0: start afresh)."""
        usable = [epochs for epochs in self._saved() if 0 < epochs <= self.log.epochs]
        if not usable:
            return 0
        model.optimizer.build(model.trainable_variables)
        model.load_weights(self._saved()[max(usable)])
        return max(usable)

    def save(self, model: Any, epochs: int) -> None:
        if self.directory is None:
            return
        partial = self.directory / f"partial-{epochs}.weights.h5"
        model.save_weights(partial)
        partial.replace(self.directory / f"epoch-{epochs}.weights.h5")
        for done, path in self._saved().items():
            if done != epochs:
                path.unlink(missing_ok=True)


def fit_and_save(
    keras: Any, model: Any, train: tuple[Any, np.ndarray], val: tuple[Any, np.ndarray], params: KerasParams,
    seed: int, meta: dict, model_dir: Path, checkpoint_dir: Path | None, *, loss: str, metric: Any, label: str = "",
    also_write: Callable[[Any, Path], None] | None = None,
) -> dict:
    """Compile and fit ``model``, then write model.keras, params.json, history.json and train.json.

    Inputs are whatever the model takes (an array, or a dict of arrays for several inputs);
    ``metric`` is a Keras metric or its name, and the summary reports its last validation value.

    Each epoch visits the training examples in an order drawn from (seed, epoch), with dropout's
    streams set from the epoch too, so no random number depends on how many epochs
    this process ran. With ``checkpoint_dir`` the weights, optimizer state and epoch log are saved
    there after every epoch, and a rerun of the same run (same parameters, seed and data) continues
    after the last saved epoch and ends where the uninterrupted run ends; a finished run's checkpoint
    is kept, so rerunning it trains nothing. ``also_write(model, directory)`` adds files to the model
    dir before it appears.
    """
    (x_train, y_train), (x_val, y_val) = train, val
    metric_name = metric if isinstance(metric, str) else metric.name
    steps = params.epochs * -(-len(y_train) // params.batch_size)
    model.compile(optimizer=_optimizer(keras, params, steps), loss=loss, metrics=[metric])
    print(
        f"training on {len(y_train)} examples, validating on {len(y_val)}; "
        f"{model.count_params():,} parameters; Keras backend {keras.backend.backend()}, {precision_in_use(keras)}"
        + (f", mirrored on {replicas_in_sync(keras)} devices" if replicas_in_sync(keras) > 1 else ""),
        flush=True,
    )
    if checkpoint_dir is not None:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
    log = EpochLog(checkpoint_dir / "epochs.json" if checkpoint_dir else None, run_identity(params, seed, meta),
                   total=params.epochs, label=label, items_per_epoch=len(y_train))
    checkpoint = _Checkpoint(checkpoint_dir, log)
    tag = f"{label}: " if label else ""

    def epoch_end(epoch: int, logs: dict) -> None:
        if not math.isfinite(float(logs.get("loss", 0.0))):  # before the checkpoint: a resume starts from sane weights
            raise DlxError(f"{tag}training diverged in epoch {epoch + 1} (loss {logs['loss']}); lower learning_rate "
                           f"(now {params.learning_rate:g})")
        before = log.elapsed[-1] if log.elapsed else log.seconds_before()
        log.on_epoch_end(epoch, logs)  # the log first, so that it covers the state saved after it
        checkpoint.save(model, epoch + 1)
        speed = len(y_train) / max(log.elapsed[-1] - before, 1e-9)
        print(f"{tag}epoch {epoch + 1}/{params.epochs}: {plain_words(logs)}  {speed:,.0f} examples/s", flush=True)

    order = _EpochOrder(x_train, y_train, params.batch_size, seed)
    batches, validation = _feeds(keras, order, (x_val, y_val))

    def epoch_begin(epoch: int, logs: dict) -> None:
        order.set_epoch(epoch)
        _seed_epoch(keras, model, seed, epoch)  # here, once fit has built what its first call builds
        log.on_epoch_begin(epoch, logs)

    callbacks = [keras.callbacks.LambdaCallback(on_epoch_begin=epoch_begin, on_epoch_end=epoch_end)]
    start = checkpoint.restore(model)
    if start < params.epochs:
        model.fit(batches, validation_data=validation, initial_epoch=start, epochs=params.epochs, shuffle=False, verbose=0,
                  callbacks=callbacks)
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
        "precision": precision_in_use(keras),
        "device": "cpu" if _gpu_capability(keras.backend.backend()) is None else "cuda",
        "replicas": replicas_in_sync(keras),
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
