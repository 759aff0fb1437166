"""What the Keras digit classifiers (mnist-mlp, mnist-cnn) share: scaling, training, evaluation.

The topics differ only in their network; each passes its ``build`` to ``train`` here. While the
network is in memory, training also writes its class probabilities for the test split with that
split's fingerprint (``predictions.npz``): evaluation reads them instead of loading Keras a second
time, and predicts itself only for another split (a champion re-scored on new data).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components import evaluate as shared
from components.data import load_dataset
from components.data.artifact import fingerprint_test_split
from components.files import read_json
from components.params import help_field
from components.topics.keras_fit import KerasParams, fit_and_save, import_keras

DATASETS = ("digits", "mnist")
PREDICTIONS = "predictions.npz"
BN_MOMENTUM = 0.9
"""Batch-norm statistics settle within ~50 steps (Keras's 0.99 needs ~500, more than small sets give)."""

BuildModel = Callable[[Any, tuple[int, ...], int, Any], Any]
"""build(keras, input_shape, n_classes, params) -> an uncompiled keras.Model ending in softmax."""


def shift_field(default: float) -> Any:
    """The ``shift`` parameter with a topic's own default."""
    return help_field(default, "augmentation: move each training image at random by up to this share of its size "
                               "in x and y (0: off)", at_least=0, below=0.5)


def tta_field(default: int) -> Any:
    """The ``tta_pixels`` parameter with a topic's own default."""
    return help_field(default, "test-time augmentation: average the class probabilities of each image moved by "
                               "every offset up to this many pixels in x and y, (2n+1)^2 views (0: the image alone)",
                      at_least=0, at_most=3)


@dataclass(frozen=True)
class ImageParams(KerasParams):
    """What both digit classifiers add to the Keras parameters: augmentation of the training images,
    and of the images predicted."""

    shift: float = shift_field(0.0)
    tta_pixels: int = tta_field(0)


def augmented(keras: Any, inputs: Any, params: ImageParams) -> Any:
    """``inputs``, each training image shifted at random by up to ``shift`` (a layer of the model, so it
    runs in the backend's graph, draws from the model's seeded streams and is off at inference)."""
    if not params.shift:
        return inputs
    return keras.layers.RandomTranslation(params.shift, params.shift, fill_mode="constant")(inputs)


def moved(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Images (N, H, W) moved by ``dx`` pixels right and ``dy`` down, the uncovered border 0 (background)."""
    out = np.zeros_like(x)
    height, width = x.shape[1:3]
    out[:, max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        x[:, max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def model_inputs(x: np.ndarray, meta: dict) -> np.ndarray:
    """Scale pixels to [0, 1] by the data set's declared range and add a channel axis."""
    top = float(meta["schema"]["value_range"][1])
    return (x.astype("float32") / top)[..., None]


def train(build: BuildModel, dataset_dir: Path, model_dir: Path, params: KerasParams, seed: int,
          checkpoint_dir: Path | None = None) -> dict:
    """Fit the network on the training split (validation each epoch) and write the model dir."""
    keras = import_keras(params.backend, params.precision)
    keras.utils.set_random_seed(seed)
    arrays, meta = load_dataset(dataset_dir)
    x_train, x_val = model_inputs(arrays["x_train"], meta), model_inputs(arrays["x_val"], meta)
    n_classes = len(meta["schema"]["y"]["classes"])
    model = build(keras, x_train.shape[1:], n_classes, params)

    def write_predictions(fitted: Any, directory: Path) -> None:
        probabilities, single_view = _predict(fitted, arrays["x_test"], meta, params.tta_pixels)
        np.savez_compressed(directory / PREDICTIONS, probabilities=probabilities, single_view=single_view,
                            fingerprint=np.array(fingerprint_test_split(dataset_dir)))

    return fit_and_save(keras, model, (x_train, arrays["y_train"]), (x_val, arrays["y_val"]), params, seed, meta,
                        model_dir, checkpoint_dir, loss="sparse_categorical_crossentropy", metric="accuracy",
                        also_write=write_predictions)


def _predict(model: Any, x: np.ndarray, meta: dict, tta_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities averaged over every move of the images by up to ``tta_pixels`` in x and y,
    and those of the images as they are."""
    views = range(-tta_pixels, tta_pixels + 1)
    found = {(dx, dy): np.asarray(model.predict(model_inputs(moved(x, dx, dy), meta), batch_size=1024, verbose=0))
             for dx in views for dy in views}
    return sum(found.values()) / len(found), found[0, 0]


def test_probabilities(dataset_dir: Path, model_dir: Path, arrays: dict, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """The model's class probabilities for the artifact's test split, with its test-time augmentation
    and without: saved by training when they are for this very split, else predicted now."""
    saved = model_dir / PREDICTIONS
    if saved.is_file():
        with np.load(saved, allow_pickle=False) as found:
            if str(found["fingerprint"]) == fingerprint_test_split(dataset_dir) and "single_view" in found:
                return found["probabilities"], found["single_view"]
    params = read_json(model_dir / "params.json")
    keras = import_keras(params["backend"])
    return _predict(keras.saving.load_model(model_dir / "model.keras"), arrays["x_test"], meta,
                    params.get("tta_pixels", 0))  # models saved before the parameter existed: none


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """Test-split metrics, the random-forest baseline on the same split, and the plots."""
    seed = read_json(model_dir / "train.json")["seed"]
    arrays, meta = load_dataset(dataset_dir)
    probabilities, single_view = test_probabilities(dataset_dir, model_dir, arrays, meta)
    classes = meta["schema"]["y"]["classes"]
    result = shared.classification_report(arrays["y_test"], probabilities, classes)
    if read_json(model_dir / "params.json").get("tta_pixels"):
        result["single_view_accuracy"] = round(float((single_view.argmax(axis=1) == arrays["y_test"]).mean()), 4)
    result["baseline"] = {"random_forest": shared.random_forest_baseline(arrays, seed)}
    history = read_json(model_dir / "history.json")
    predicted = probabilities.argmax(axis=1)
    result["plots"] = [
        shared.plot_learning_curves(history, out_dir / "learning_curves.png"),
        shared.plot_confusion_matrix(result["confusion_matrix"], out_dir / "confusion_matrix.png"),
        shared.plot_misclassified(arrays["x_test"], arrays["y_test"], predicted, out_dir / "misclassified.png"),
    ]
    return result
