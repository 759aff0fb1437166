"""catvar-split: one-hot(user) → Dense and one-hot(movie) → Dense, concatenated, a dense head → rating.

Each one-hot vector also feeds a width-1 Dense, its bias.

A bias-free Dense on a one-hot vector is a row lookup of its kernel, so this is catvar-keras
written the long way; the one-hot vectors are made per batch inside the model (CategoryEncoding).
"""
from __future__ import annotations

from typing import Any

from components.topics.catvar import Params, catvar_topic, factors_per_input, l2


def embed(keras: Any, user: Any, item: Any, schema: dict, params: Params) -> tuple[Any, Any]:
    layers = keras.layers
    one_hot = {name: layers.CategoryEncoding(schema[f"n_{name}s"] + 1, "one_hot")(tensor)
               for name, tensor in (("user", user), ("item", item))}

    def dense(name: str, kind: str, width: int) -> Any:
        return layers.Dense(width, use_bias=False, kernel_regularizer=l2(keras, params),
                            name=f"{name}_{kind}")(one_hot[name])

    return (layers.Concatenate()([dense(name, "embedding", params.embedding_size) for name in one_hot]),
            layers.Add()([dense(name, "bias", 1) for name in one_hot]))


TOPIC = catvar_topic("catvar-split", "one-hot user and one-hot movie through separate dense layers, joined → rating",
                     embed, factors_per_input)
