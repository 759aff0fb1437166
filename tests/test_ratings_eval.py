"""The shared ratings evaluation: metrics and baselines with known answers, unseen ids, pictures, report."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.data.artifact import write_artifact
from components.files import write_json
from components.report import render
from components.topics.ratings.evaluation import BIAS_REG_ITEM, BIAS_REG_USER, Learned, evaluate_ratings, fit_biases

# train: exactly 3 + user bias (+1, -1) + item bias (+0.5, 0, -0.5), every cell observed
TRAIN = [(u, i, 3 + bu + bi) for u, bu in enumerate((1.0, -1.0)) for i, bi in enumerate((0.5, 0.0, -0.5))]
# test: a seen pair each side, an unseen user (-1) and an unseen item (-1)
TEST = [(0, 0, 5.0), (1, 2, 1.0), (-1, 1, 3.0), (0, -1, 4.0)]
TITLES = ["Alpha (1995)", "Beta", None]
GENRES = ["Comedy", "Drama|War", None]


def _table(rows) -> pd.DataFrame:
    users, items, ratings = zip(*rows)
    return pd.DataFrame({"user": np.array(users, np.int32), "item": np.array(items, np.int32),
                         "rating": np.array(ratings, np.float32)})


@pytest.fixture
def tiny(tmp_path) -> Path:
    tables = {"train": _table(TRAIN), "val": _table(TRAIN[:1]), "test": _table(TEST),
              "users": pd.DataFrame({"id": [7, 8], "index": np.arange(2, dtype=np.int32)}),
              "items": pd.DataFrame({"id": [10, 20, 30], "index": np.arange(3, dtype=np.int32),
                                     "title": pd.array(TITLES, "string"), "genres": pd.array(GENRES, "string")})}
    meta = {"dataset": "tiny", "source": "test", "inputs": {}, "seed": 0,
            "splits": {name: len(tables[name]) for name in ("train", "val", "test")},
            "schema": {"kind": "ratings", "n_users": 2, "n_items": 3, "rating_range": [1.0, 5.0], "unknown_index": -1},
            "noise_rmse": 0.25}
    write_artifact(tmp_path / "dataset", tables, meta)
    return tmp_path / "dataset"


def _ridge_biases() -> tuple[float, np.ndarray, np.ndarray]:
    """The bias baseline solved directly: least squares around the mean with the same L2."""
    users, items, ratings = (np.array(column) for column in zip(*TRAIN))
    design = np.hstack([np.eye(2)[users], np.eye(3)[items]])
    penalty = np.diag([BIAS_REG_USER] * 2 + [BIAS_REG_ITEM] * 3)
    mean = ratings.mean()
    solution = np.linalg.solve(design.T @ design + penalty, design.T @ (ratings - mean))
    return mean, solution[:2], solution[2:]


def test_bias_fit_recovers_additive_ratings_and_falls_back_for_unseen_ids():
    users, items, ratings = (np.array(column) for column in zip(*TRAIN))
    mean, user_bias, item_bias = fit_biases(users, items, ratings, 2, 3, reg_user=0, reg_item=0, sweeps=20)
    assert mean == pytest.approx(3.0)
    np.testing.assert_allclose(user_bias[:2], [1, -1], atol=1e-6)
    np.testing.assert_allclose(item_bias[:3], [0.5, 0, -0.5], atol=1e-6)
    assert user_bias[-1] == item_bias[-1] == 0  # what index -1 reads

    mean, user_bias, item_bias = fit_biases(users, items, ratings, 2, 3)
    _, want_user, want_item = _ridge_biases()
    np.testing.assert_allclose(user_bias[:2], want_user, atol=1e-4)
    np.testing.assert_allclose(item_bias[:3], want_item, atol=1e-4)


def test_metrics_baselines_and_noise_floor_on_a_known_split(tiny, tmp_path):
    # a model predicting 9 everywhere: clipped to 5, errors 0, 4, 2, 1
    learned = Learned(lambda users, items: np.full(len(users), 9.0))
    result = evaluate_ratings(tiny, tmp_path / "no-model", tmp_path, learned, seed=0)
    assert result["test"] == {"rmse": round(np.sqrt(21 / 4), 4), "mae": 1.75}
    # global mean 3: errors 2, -2, 0, 1
    assert result["baseline"]["global_mean"] == {"rmse": 1.5, "mae": 1.25}
    mean, user_bias, item_bias = _ridge_biases()
    expected = np.clip([mean + user_bias[0] + item_bias[0], mean + user_bias[1] + item_bias[2],
                        mean + item_bias[1], mean + user_bias[0]], 1, 5)  # unseen: no bias
    errors = np.array([5.0, 1.0, 3.0, 4.0]) - expected
    assert result["baseline"]["bias"]["rmse"] == pytest.approx(np.sqrt(np.mean(errors ** 2)), abs=1e-4)
    assert result["baseline"]["bias"]["mae"] == pytest.approx(np.mean(np.abs(errors)), abs=1e-4)
    assert result["noise_floor"] == {"rmse": 0.25}
    # no factors, no biases, no history: no check, no lists, no pictures
    assert "embedding_check" not in result and "item_bias_top" not in result
    assert result["plots"] == [] and result["interactive"] == []


def test_embedding_check_bias_lists_pictures_and_report(tiny, tmp_path):
    model_dir, out_dir = tmp_path / "model", tmp_path / "eval"
    model_dir.mkdir()
    out_dir.mkdir()
    write_json(model_dir / "history.json", {"loss": [1.0, 0.8], "val_loss": [1.1, 0.9], "rmse": [1.0, 0.9],
                                            "val_rmse": [1.05, 0.95]})
    rng = np.random.default_rng(0)
    learned = Learned(lambda users, items: np.full(len(users), 3.0), user_factors=rng.normal(size=(2, 4)),
                      item_factors=rng.normal(size=(3, 4)), item_bias=np.array([0.3, -0.2, 0.1]))
    result = evaluate_ratings(tiny, model_dir, out_dir, learned, seed=0)

    assert set(result["embedding_check"]) == {"rf_oob_r2_embeddings", "rf_oob_r2_ids"}
    assert [e["item"] for e in result["item_bias_top"]] == ["Alpha (1995)", "30", "Beta"]  # no title: the id
    assert result["item_bias_bottom"][0] == {"item": "Beta", "bias": -0.2, "ratings": 2}
    assert result["plots"] == ["learning_curves.png"] and (out_dir / "learning_curves.png").is_file()

    assert result["interactive"] == ["item_embeddings.html"]
    page = (out_dir / "item_embeddings.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=[\"']https?:", page)  # inline BokehJS: opens offline
    assert "Alpha (1995)" in page and "Drama|War" in page

    metrics = {"topic": "catvar-keras", "dataset": "tiny", "data_source": "test", "seed": 0, "train_seconds": 1.0,
               "dlx_version": "0", "params": {"epochs": 2}, **result}
    report = render(metrics, out_dir)
    assert "srcdoc=" in report and "Alpha (1995)" in report
    assert not re.search(r"<script[^>]+src=[\"']https?:", report)
    assert "Most negative item biases" in report and "rf_oob_r2_embeddings" in report
