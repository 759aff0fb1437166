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
from components.topics.keras_classifier import BN_MOMENTUM, KerasParams, evaluate_classifier, train_classifier


@dataclass(frozen=True)
class Params(KerasParams):
    hidden_units: tuple[int, ...] = help_field((512, 512), "width of each hidden dense layer")


def build(keras: Any, input_shape: tuple[int, ...], n_classes: int, params: Params) -> Any:
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = layers.Flatten()(inputs)
    for units in params.hidden_units:
        x = layers.Dense(units, use_bias=False)(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
        x = layers.Activation("relu")(x)
        x = layers.Dropout(params.dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="mnist_mlp")


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    return train_classifier(build, dataset_dir, model_dir, params, seed, checkpoint_dir)


TOPIC = Topic(
    name="mnist-mlp",
    description="dense net (512-512, batch norm, dropout) on handwritten digits; random-forest baseline",
    framework="keras",
    datasets=("digits", "mnist"),
    params=Params,
    train=train,
    evaluate=evaluate_classifier,
    main_metric="accuracy",
    presets={"digits": {"epochs": "30", "batch_size": "32"}},
)
