"""mnist-mlp: the seed's "vanilla" dense network on handwritten digits.

Two 512-unit hidden layers, each with batch normalisation and dropout; compared with a random
forest on the same split, as the seed did.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.params import help_field
from components.registry import Topic
from components.topics.images import classifier
from components.topics.keras_fit import softmax_head


@dataclass(frozen=True)
class Params(classifier.ImageParams):
    epochs: int = help_field(15, "passes over the training split", at_least=1)
    batch_size: int = help_field(256, "examples per gradient step", at_least=1)
    learning_rate: float = help_field(2e-3, "initial learning rate", above=0)
    shift: float = classifier.shift_field(0.05)
    hidden_units: tuple[int, ...] = help_field((512, 512), "width of each hidden dense layer", at_least=1)


def build(keras: Any, input_shape: tuple[int, ...], n_classes: int, params: Params) -> Any:
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = layers.Flatten()(classifier.augmented(keras, inputs, params))
    for units in params.hidden_units:
        x = layers.Dense(units, use_bias=False)(x)
        x = layers.BatchNormalization(momentum=classifier.BN_MOMENTUM)(x)
        x = layers.Activation("relu")(x)
        x = layers.Dropout(params.dropout)(x)
    return softmax_head(keras, inputs, x, n_classes, "mnist_mlp")


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    return classifier.train(build, dataset_dir, model_dir, params, seed, checkpoint_dir)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    return classifier.evaluate(dataset_dir, model_dir, out_dir)


TOPIC = Topic(
    name="mnist-mlp",
    description="dense net 512-512 with batch norm and dropout",
    framework="keras", datasets=classifier.DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="accuracy", presets={"digits": {"epochs": "30", "batch_size": "32", "learning_rate": "1e-3", "shift": "0"}},
)
