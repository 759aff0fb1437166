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
from components.topics.keras_fit import KerasParams, softmax_head


@dataclass(frozen=True)
class Params(KerasParams):
    hidden_units: tuple[int, ...] = help_field((512, 512), "width of each hidden dense layer", at_least=1)


def build(keras: Any, input_shape: tuple[int, ...], n_classes: int, params: Params) -> Any:
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = layers.Flatten()(inputs)
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
    main_metric="accuracy", presets={"digits": {"epochs": "30", "batch_size": "32"}},
)
