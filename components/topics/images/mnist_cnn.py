"""mnist-cnn: a convolutional network on handwritten digits.

Conv blocks (convolution, max-pool, batch norm, ReLU) followed by a dropout-regularised dense
layer: LeNet's shape with modern normalisation, small enough to train on a laptop CPU. Pooling
comes before the normalisation, which then works on a quarter of the values (on a CPU, batch
norm over full-size maps is a large share of each step); max-pooling commutes with the ReLU, so
only the statistics batch norm sees change. Test images are also predicted moved by a pixel each way
(``tta_pixels``) and the probabilities averaged.
A block's convolution shrinks the image ('valid') while it is at least twice the kernel wide
and keeps its size ('same') below that, so one network serves 8x8 digits and 28x28 MNIST.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.errors import DlxError
from components.params import help_field
from components.registry import Topic
from components.topics.images import classifier
from components.topics.keras_fit import softmax_head


@dataclass(frozen=True)
class Params(classifier.ImageParams):
    epochs: int = help_field(9, "passes over the training split", at_least=1)
    batch_size: int = help_field(128, "examples per gradient step", at_least=1)
    learning_rate: float = help_field(2e-3, "initial learning rate", above=0)
    dropout: float = help_field(0.5, "dropout rate before the output layer", at_least=0, below=1)
    filters: tuple[int, ...] = help_field((32, 64), "filters of each conv block (each block halves the image)",
                                          at_least=1)
    kernel_size: int = help_field(5, "convolution window (square)", at_least=1)
    dense_units: int = help_field(512, "width of the dense layer after the conv blocks", at_least=1)
    shift: float = classifier.shift_field(0.1)
    tta_pixels: int = classifier.tta_field(1)


def build(keras: Any, input_shape: tuple[int, ...], n_classes: int, params: Params) -> Any:
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x, size = classifier.augmented(keras, inputs, params), input_shape[0]
    for filters in params.filters:
        padding = "valid" if size >= 2 * params.kernel_size else "same"
        size = (size - params.kernel_size + 1 if padding == "valid" else size) // 2
        if size < 1:
            raise DlxError(f"{len(params.filters)} conv blocks shrink {input_shape[0]}x{input_shape[1]} images to nothing; "
                           "use fewer filters entries")
        x = layers.Conv2D(filters, params.kernel_size, padding=padding, use_bias=False)(x)
        x = layers.MaxPooling2D()(x)  # before batch norm: a quarter of the values to normalise
        x = layers.BatchNormalization(momentum=classifier.BN_MOMENTUM)(x)
        x = layers.Activation("relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(params.dense_units, activation="relu")(x)
    x = layers.Dropout(params.dropout)(x)
    return softmax_head(keras, inputs, x, n_classes, "mnist_cnn")


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    return classifier.train(build, dataset_dir, model_dir, params, seed, checkpoint_dir)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    return classifier.evaluate(dataset_dir, model_dir, out_dir)


TOPIC = Topic(
    name="mnist-cnn",
    description="conv-BN-pool blocks, a dense layer and dropout",
    framework="keras", datasets=classifier.DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="accuracy",
    presets={"digits": {"epochs": "20", "batch_size": "32", "learning_rate": "1e-3", "shift": "0", "tta_pixels": "0"}},
)
