"""mnist-mlp: the seed's "vanilla" dense network on handwritten digits.

Two 512-unit hidden layers, each with batch normalisation and dropout; compared with a random
forest on the same split, as the seed did.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.params import help_field
from components.topics.keras_classifier import BN_MOMENTUM, KerasParams, classifier_topic, softmax_head


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
    return softmax_head(keras, inputs, x, n_classes, "mnist_mlp")


TOPIC = classifier_topic(
    "mnist-mlp", "dense net (512-512, batch norm, dropout) on handwritten digits; random-forest baseline",
    Params, build, presets={"digits": {"epochs": "30", "batch_size": "32"}},
)
