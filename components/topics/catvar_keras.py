"""catvar-keras: ``keras.layers.Embedding`` for user and movie, concatenated, a dense head → rating.

The library's embedding is a row lookup (a gather) in an (n + 1, k) table per input, and a
width-1 one for the bias; see
components.topics.catvar for the head and the reserved row of unseen users and items.
"""
from __future__ import annotations

from typing import Any

from components.topics.catvar import Params, catvar_topic, factors_per_input, l2


def embed(keras: Any, user: Any, item: Any, schema: dict, params: Params) -> tuple[Any, Any]:
    layers = keras.layers

    def table(name: str, tensor: Any, kind: str, width: int) -> Any:
        return layers.Embedding(schema[f"n_{name}s"] + 1, width, embeddings_regularizer=l2(keras, params),
                                name=f"{name}_{kind}")(tensor)

    inputs = (("user", user), ("item", item))
    return (layers.Concatenate()([table(name, tensor, "embedding", params.embedding_size) for name, tensor in inputs]),
            layers.Add()([table(name, tensor, "bias", 1) for name, tensor in inputs]))


TOPIC = catvar_topic("catvar-keras", "Keras Embedding layers for user and movie, concatenated, dense head → rating",
                     embed, factors_per_input)
