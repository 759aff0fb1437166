"""catvar-keras: ``keras.layers.Embedding`` for user and movie, concatenated, a dense head → rating.

The library's embedding is a row lookup (a gather) in an (n + 1, k) table per input, and a
width-1 one for the bias; see
components.topics.ratings.catvar for the head and the reserved row of unseen users and items.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from components.registry import Topic
from components.topics.ratings import catvar
from components.topics.ratings.catvar import Params, l2


def embed(keras: Any, user: Any, item: Any, schema: dict, params: Params) -> tuple[Any, Any]:
    layers = keras.layers

    def table(name: str, tensor: Any, kind: str, width: int) -> Any:
        return layers.Embedding(schema[f"n_{name}s"] + 1, width, embeddings_regularizer=l2(keras, params),
                                name=f"{name}_{kind}")(tensor)

    inputs = (("user", user), ("item", item))
    return (layers.Concatenate()([table(name, tensor, "embedding", params.embedding_size) for name, tensor in inputs]),
            layers.Add()([table(name, tensor, "bias", 1) for name, tensor in inputs]))


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    return catvar.train(embed, "catvar-keras", dataset_dir, model_dir, params, seed, checkpoint_dir)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    return catvar.evaluate(catvar.factors_per_input, dataset_dir, model_dir, out_dir)


TOPIC = Topic(
    name="catvar-keras", description="Keras Embedding layers for user and movie",
    framework="keras", datasets=catvar.DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="rmse", higher_is_better=False, presets=catvar.PRESETS,
)
