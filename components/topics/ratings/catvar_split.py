"""catvar-split: one-hot(user) → Dense and one-hot(movie) → Dense, concatenated, a dense head → rating.

Each one-hot vector also feeds a width-1 Dense, its bias.

A bias-free Dense on a one-hot vector is a row lookup of its kernel, so this is catvar-keras
written the long way; the one-hot vectors are made per batch inside the model (CategoryEncoding).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from components.registry import Topic
from components.topics.ratings import catvar
from components.topics.ratings.catvar import Params, l2


def embed(keras: Any, user: Any, item: Any, schema: dict, params: Params) -> tuple[Any, Any]:
    layers = keras.layers
    one_hot = {name: layers.CategoryEncoding(schema[f"n_{name}s"] + 1, "one_hot")(tensor)
               for name, tensor in (("user", user), ("item", item))}

    def dense(name: str, kind: str, width: int) -> Any:
        return layers.Dense(width, use_bias=False, kernel_regularizer=l2(keras, params),
                            name=f"{name}_{kind}")(one_hot[name])

    return (layers.Concatenate()([dense(name, "embedding", params.embedding_size) for name in one_hot]),
            layers.Add()([dense(name, "bias", 1) for name in one_hot]))


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    return catvar.train(embed, "catvar-split", dataset_dir, model_dir, params, seed, checkpoint_dir)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    return catvar.evaluate(catvar.factors_per_input, dataset_dir, model_dir, out_dir)


TOPIC = Topic(
    name="catvar-split", description="one-hot user and movie into separate dense layers",
    framework="keras", datasets=catvar.DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="rmse", higher_is_better=False, presets=catvar.PRESETS,
)
