"""What catvar-keras, catvar-split and catvar-homebrew share: embeddings of categorical variables.

The three topics learn the same regression, rating = range(sigmoid(head([user embedding ‖ item
embedding]) + user bias + item bias)), and differ only in how an index becomes its embedding and
bias (each topic's module), so their scores compare like for like:

- ``catvar-keras``: ``keras.layers.Embedding`` per input, a row lookup (a gather).
- ``catvar-split``: one-hot(user) → Dense and one-hot(item) → Dense, the two outputs concatenated.
  A bias-free Dense on a one-hot vector *is* a row lookup of its kernel (the tests prove it), so
  this is catvar-keras written the long way.
- ``catvar-homebrew``: the seed's hand-made embedding, one Dense over one-hot(user) ‖ one-hot(item).
  Its output is the sum of a user row and an item row of one kernel, twice as wide as one
  embedding so that it can hold both (split's concatenation is the block-diagonal special case).
  The seed looked user ids up in the movie embedding; here users take rows 0..n_users and items
  the rows after, and a test checks that each input reaches its own rows.

The one-hot vectors exist one batch at a time inside the model (``CategoryEncoding``), so memory
grows with batch × (users + items), never with the data set. The head is the same for all: dense
ReLU layers with dropout, then one linear unit (started at the training mean) plus the user and
item biases, through a sigmoid scaled to the rating range widened by half a point each side (a
sigmoid reaches neither end, fastai-style). The biases carry what a user or movie is on its own,
as in the bias baseline, so the head only learns the interactions; the item biases are what the
report's bias lists rank. Loss MSE; L2 on the embedding and bias weights.

Unseen users and items (index -1, absent from training) are mapped to a reserved last row (index
n_users or n_items) whose weights start at zero. No training example hits that row and the L2
penalty of zero is zero, so its gradient stays zero and every optimiser here leaves it at zero:
an unseen user gets the zero embedding, the point L2 pulls an unrated user to.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components.data import load_ratings
from components.files import read_json
from components.params import help_field
from components.topics.keras_fit import KerasParams, fit_and_save, import_keras
from components.topics.ratings.evaluation import Learned, evaluate_ratings

MARGIN = 0.5
"""The sigmoid's output range is the rating range widened by this much each side."""
DATASETS = ("synthetic-ratings", "movielens-100k", "movielens-latest-small", "ratings-file:PATH")
PRESETS = {"synthetic-ratings": {"epochs": "30", "batch_size": "64"}}


@dataclass(frozen=True)
class Params(KerasParams):
    """Defaults suit MovieLens 100K; the synthetic data set has its own preset."""

    epochs: int = help_field(8, "passes over the training split", at_least=1)
    batch_size: int = help_field(256, "ratings per gradient step", at_least=1)
    dropout: float = help_field(0.3, "dropout rate after the embeddings and after each hidden layer",
                                at_least=0, below=1)
    embedding_size: int = help_field(32, "width of the user and of the item embedding", at_least=1)
    hidden_units: tuple[int, ...] = help_field((64,), "width of each hidden dense layer of the head", at_least=1)
    l2: float = help_field(1e-5, "L2 penalty on the embedding and bias weights (per weight, added to the batch loss)",
                           at_least=0)


Embed = Callable[[Any, Any, Any, dict, Params], tuple[Any, Any]]
"""embed(keras, user input, item input, schema, params) -> (joined embeddings, user bias + item bias)."""
Factors = Callable[[Any, dict], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""factors(model, schema) -> (user factors, item factors, item biases) without the reserved rows."""


def model_inputs(users: np.ndarray, items: np.ndarray, schema: dict) -> dict[str, np.ndarray]:
    """The model's inputs: indices with -1 (unseen in training) sent to the reserved last row."""
    return {"user": np.where(users < 0, schema["n_users"], users).astype(np.int32),
            "item": np.where(items < 0, schema["n_items"], items).astype(np.int32)}


def l2(keras: Any, params: Params) -> Any:
    return keras.regularizers.L2(params.l2) if params.l2 else None


def factors_per_input(model: Any, schema: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each input's own (n + 1, k) embedding and (n + 1, 1) bias table (catvar-keras, catvar-split),
    reserved rows dropped."""
    def table(layer: str, rows: int) -> np.ndarray:
        return model.get_layer(layer).get_weights()[0][:rows]

    n_users, n_items = schema["n_users"], schema["n_items"]
    return table("user_embedding", n_users), table("item_embedding", n_items), table("item_bias", n_items)[:, 0]


def reserved_rows(model: Any, schema: dict) -> dict[str, list[int]]:
    """Layer name -> rows of its embedding weights that stand for unseen users/items."""
    names = {layer.name for layer in model.layers}
    if "embedding" in names:
        return dict.fromkeys(("embedding", "bias"), [schema["n_users"], schema["n_users"] + 1 + schema["n_items"]])
    return {f"{name}_{kind}": [schema[f"n_{name}s"]] for name in ("user", "item") for kind in ("embedding", "bias")}


def build(keras: Any, embed: Embed, schema: dict, train_mean: float, params: Params, name: str) -> Any:
    """The whole network: embedding (per topic), the shared head, the scaled sigmoid; reserved rows zeroed."""
    layers = keras.layers
    user = keras.Input(shape=(), dtype="int32", name="user")
    item = keras.Input(shape=(), dtype="int32", name="item")
    vectors, bias = embed(keras, user, item, schema, params)
    x = layers.Dropout(params.dropout)(vectors)
    for units in params.hidden_units:
        x = layers.Dropout(params.dropout)(layers.Dense(units, activation="relu")(x))
    lo, hi = schema["rating_range"]
    low, span = lo - MARGIN, hi - lo + 2 * MARGIN
    start = float(np.clip((train_mean - low) / span, 0.01, 0.99))
    x = layers.Dense(1, bias_initializer=keras.initializers.Constant(np.log(start / (1 - start))))(x)
    x = layers.Activation("sigmoid", dtype="float32")(layers.Add()([x, bias]))
    model = keras.Model({"user": user, "item": item}, layers.Rescaling(span, offset=low, dtype="float32")(x), name=name)
    for layer_name, rows in reserved_rows(model, schema).items():
        weights = model.get_layer(layer_name).get_weights()[0]
        weights[rows] = 0.0
        model.get_layer(layer_name).set_weights([weights])
    return model


def train(embed: Embed, name: str, dataset_dir: Path, model_dir: Path, params: Params, seed: int,
          checkpoint_dir: Path | None = None) -> dict:
    """Fit on the training split, validate on val each epoch; the model dir as fit_and_save writes it."""
    keras = import_keras(params.backend, params.precision)
    keras.utils.set_random_seed(seed)
    tables, meta = load_ratings(dataset_dir)
    schema = meta["schema"]
    train_part, val = tables["train"], tables["val"]
    model = build(keras, embed, schema, float(train_part["rating"].mean()), params, name.replace("-", "_"))

    def split(table: Any) -> tuple[dict, np.ndarray]:
        return model_inputs(table["user"].to_numpy(), table["item"].to_numpy(), schema), table["rating"].to_numpy()

    return fit_and_save(keras, model, split(train_part), split(val), params, seed, meta, model_dir, checkpoint_dir,
                        loss="mse", metric=keras.metrics.RootMeanSquaredError(name="rmse"))


def evaluate(factors: Factors, dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """The shared ratings evaluation of the saved model, its embedding tables as the factors."""
    params = read_json(model_dir / "params.json")
    seed = read_json(model_dir / "train.json")["seed"]
    schema = read_json(dataset_dir / "meta.json")["schema"]
    keras = import_keras(params["backend"])
    model = keras.saving.load_model(model_dir / "model.keras")

    def predict(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(model_inputs(users, items, schema), batch_size=8192, verbose=0))[:, 0]

    return evaluate_ratings(dataset_dir, model_dir, out_dir, Learned(predict, *factors(model, schema)), seed)
