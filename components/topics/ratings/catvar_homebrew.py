"""catvar-homebrew: the seed's hand-made embedding, one Dense over one-hot(user) ‖ one-hot(movie).

The Dense output is the sum of a user row and an item row of one kernel: users own rows
0..n_users (the last one reserved for unseen users), items the rows after. The seed looked user
ids up in the movie embedding; a test checks that each input reaches its own rows. The kernel is
twice as wide as one embedding so that it can hold both (catvar-split's concatenation is its
block-diagonal special case). A width-1 Dense on the same one-hot vector gives user bias + item
bias the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from components.registry import Topic
from components.topics.ratings import catvar
from components.topics.ratings.catvar import Params, l2


def embed(keras: Any, user: Any, item: Any, schema: dict, params: Params) -> tuple[Any, Any]:
    layers = keras.layers
    one_hot = layers.Concatenate(name="one_hot_user_item")([
        layers.CategoryEncoding(schema["n_users"] + 1, "one_hot")(user),
        layers.CategoryEncoding(schema["n_items"] + 1, "one_hot")(item),
    ])

    def dense(name: str, width: int) -> Any:
        return layers.Dense(width, use_bias=False, kernel_regularizer=l2(keras, params), name=name)(one_hot)

    return dense("embedding", 2 * params.embedding_size), dense("bias", 1)


def factors(model: Any, schema: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users' kernel rows, then the items' rows after the user block (reserved rows dropped)."""
    first_item = schema["n_users"] + 1
    kernel, bias = (model.get_layer(name).get_weights()[0] for name in ("embedding", "bias"))
    items = slice(first_item, first_item + schema["n_items"])
    return kernel[:schema["n_users"]], kernel[items], bias[items, 0]


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    return catvar.train(embed, "catvar-homebrew", dataset_dir, model_dir, params, seed, checkpoint_dir)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    return catvar.evaluate(factors, dataset_dir, model_dir, out_dir)


TOPIC = Topic(
    name="catvar-homebrew", description="one dense layer on one-hot(user) ‖ one-hot(movie)",
    framework="keras", datasets=catvar.DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="rmse", higher_is_better=False, presets=catvar.PRESETS,
)
