"""The three Keras categorical-embedding topics: they learn, their embeddings are lookups, unseen
ids work, and an interrupted run resumes."""
from pathlib import Path

import keras
import numpy as np
import pytest

from components.data import prepare_dataset
from components.evaluate import evaluate_run
from components.files import read_json
from components.params import from_dict
from components.topics.ratings import catvar, catvar_homebrew, catvar_keras, catvar_split

TOPICS = {"catvar-keras": catvar_keras.TOPIC, "catvar-split": catvar_split.TOPIC,
          "catvar-homebrew": catvar_homebrew.TOPIC}
# ~34 ratings per user: enough for a dense head to learn the rank-5 interactions (the default
# synthetic set, ~12 per user, is too sparse for it to beat the bias baseline by much).
DATA = {"users": "120", "items": "80", "density": "0.4"}
LEARNS = {"epochs": 40, "batch_size": 128, "learning_rate": 0.01, "dropout": 0.1, "hidden_units": [128, 64]}
SCHEMA = {"n_users": 4, "n_items": 3, "rating_range": [1.0, 5.0]}


class Interrupted(Exception):
    """Stands in for a spot interruption."""


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ratings") / "dataset"
    prepare_dataset("synthetic-ratings", path, options=DATA)
    return path


def _params(**values):
    return from_dict(catvar.Params, values, "catvar test")


@pytest.mark.parametrize("name", TOPICS)
def test_topic_learns_synthetic_ratings(name, ratings, tmp_path):
    """~15 s each: well below the bias baseline, within 2x the noise floor (~0.47 vs 0.29 measured)."""
    topic = TOPICS[name]
    topic.train(ratings, tmp_path / "model", _params(**LEARNS), 0)
    assert {"model.keras", "params.json", "history.json", "train.json"} <= {p.name for p in (tmp_path / "model").iterdir()}
    metrics = evaluate_run(topic, ratings, tmp_path / "model", tmp_path / "eval")
    rmse, bias, floor = metrics["test"]["rmse"], metrics["baseline"]["bias"]["rmse"], metrics["noise_floor"]["rmse"]
    assert rmse < bias - 0.15
    assert rmse < 2 * floor
    check = metrics["embedding_check"]
    assert check["rf_oob_r2_embeddings"] > check["rf_oob_r2_ids"] + 0.1
    assert len(metrics["item_bias_top"]) == 10 and metrics["interactive"] == ["item_embeddings.html"]
    assert "srcdoc=" in (tmp_path / "eval" / "report.html").read_text(encoding="utf-8")


def _outputs(model, layer: str, users: list[int], items: list[int]) -> np.ndarray:
    probe = keras.Model(model.inputs, model.get_layer(layer).output)
    return np.asarray(probe.predict(catvar.model_inputs(np.array(users), np.array(items), SCHEMA), verbose=0))


def test_one_hot_dense_is_a_row_lookup_and_users_and_items_reach_their_own_rows():
    keras.utils.set_random_seed(0)
    params = _params(embedding_size=3)
    users, items = [0, 1, 2, 3, -1], [0, 1, 2, -1, 2]
    mapped = catvar.model_inputs(np.array(users), np.array(items), SCHEMA)

    homebrew = catvar.build(keras, catvar_homebrew.embed, SCHEMA, 3.5, params, "homebrew")
    kernel = homebrew.get_layer("embedding").get_weights()[0]
    assert kernel.shape == (4 + 1 + 3 + 1, 6)
    kernel = np.random.default_rng(0).normal(size=kernel.shape).astype("float32")
    homebrew.get_layer("embedding").set_weights([kernel])
    # Dense(one-hot(user) ‖ one-hot(item)) = user's row + item's row, items after the user block
    want = kernel[mapped["user"]] + kernel[4 + 1 + mapped["item"]]
    np.testing.assert_allclose(_outputs(homebrew, "embedding", users, items), want, rtol=1e-5, atol=1e-6)
    user_factors, item_factors, _ = catvar_homebrew.factors(homebrew, SCHEMA)
    np.testing.assert_array_equal(user_factors, kernel[:4])
    np.testing.assert_array_equal(item_factors, kernel[5:8])

    # catvar-split's Dense on a one-hot equals catvar-keras's Embedding given the same table
    split = catvar.build(keras, catvar_split.embed, SCHEMA, 3.5, params, "split")
    lookup = catvar.build(keras, catvar_keras.embed, SCHEMA, 3.5, params, "lookup")
    for layer in ("user_embedding", "item_embedding"):
        lookup.get_layer(layer).set_weights(split.get_layer(layer).get_weights())
        by_index = users if layer.startswith("user") else items
        np.testing.assert_allclose(_outputs(split, layer, users, items), _outputs(lookup, layer, users, items),
                                   rtol=1e-5, atol=1e-6)
        table = split.get_layer(layer).get_weights()[0]
        np.testing.assert_allclose(_outputs(split, layer, users, items),
                                   table[np.where(np.array(by_index) < 0, len(table) - 1, by_index)], atol=1e-6)


@pytest.mark.parametrize("name", ["catvar-keras", "catvar-homebrew"])
def test_unseen_ids_use_a_reserved_row_that_stays_zero(name, ratings, tmp_path):
    topic = TOPICS[name]
    topic.train(ratings, tmp_path / "model", _params(epochs=2, l2=1e-4), 0)
    model = keras.saving.load_model(tmp_path / "model" / "model.keras")
    schema = read_json(ratings / "meta.json")["schema"]
    for layer, rows in catvar.reserved_rows(model, schema).items():
        np.testing.assert_array_equal(model.get_layer(layer).get_weights()[0][rows], 0)
    inputs = catvar.model_inputs(np.array([-1, 0, -1]), np.array([0, -1, -1]), schema)
    predicted = np.asarray(model.predict(inputs, verbose=0))[:, 0]
    assert np.all((predicted > 0.5) & (predicted < 5.5))


def test_interrupted_run_resumes_after_the_last_saved_epoch(ratings, tmp_path, monkeypatch):
    started: list[int] = []
    stop_at = [2]
    fit = keras.Model.fit

    def on_epoch_begin(epoch, logs):
        if epoch == stop_at[0]:
            raise Interrupted(f"interrupted before epoch {epoch + 1}")
        started.append(epoch)

    def recording_fit(self, *args, callbacks=None, **kwargs):
        spy = keras.callbacks.LambdaCallback(on_epoch_begin=on_epoch_begin)
        return fit(self, *args, callbacks=[*(callbacks or []), spy], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    params, checkpoints = _params(epochs=4), tmp_path / "checkpoints"
    with pytest.raises(Interrupted):
        catvar_split.TOPIC.train(ratings, tmp_path / "model", params, 0, checkpoints)
    assert started == [0, 1] and not (tmp_path / "model").exists()

    started.clear()
    stop_at[0] = None
    summary = catvar_split.TOPIC.train(ratings, tmp_path / "model", params, 0, checkpoints)
    assert started == [2, 3]
    history = read_json(tmp_path / "model" / "history.json")
    assert {len(values) for values in history.values()} == {4}
    assert history["val_rmse"][-1] == summary["val_rmse"]
