"""Evaluation shared by every ratings topic (catvar-*, cf-*): one scoring, one set of pictures.

A trainer hands over what it learned as a ``Learned`` (a predict function and, when it has them,
its user/item factors and item biases); ``evaluate_ratings`` scores it on the test split next to
baselines fitted on the training split only, runs the seed's random-forest check on the
embeddings, and draws the learning curves and the interactive map of the item embeddings.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from components import evaluate, progress
from components.data import load_ratings
from components.files import read_json

if TYPE_CHECKING:
    import pandas as pd

BIAS_REG_USER, BIAS_REG_ITEM = 15.0, 10.0
"""L2 of the bias baseline, per rating count (Surprise's BaselineOnly defaults): a user or item
with few ratings keeps a bias near 0 instead of fitting its one or two ratings."""
BIAS_SWEEPS = 10
RF_ROWS, RF_TREES = 5000, 50
"""The random-forest check fits this many training pairs with this many trees: a few seconds."""
BIAS_LIST = 10
POPULAR = 20
"""Bias lists rank items with at least this many training ratings (all rated items if too few have)."""
MAP_FILE = "item_embeddings.html"


@dataclass(frozen=True)
class Learned:
    """What a trained ratings model exposes to the shared evaluation."""

    predict: Callable[[np.ndarray, np.ndarray], np.ndarray]
    """(user index, item index) int arrays -> predicted ratings; index -1 (unseen in training) must
    be handled by the model (bias/mean fallback)."""
    user_factors: np.ndarray | None = None
    """(n_users, k) learned user embeddings."""
    item_factors: np.ndarray | None = None
    """(n_items, k) learned item embeddings."""
    item_bias: np.ndarray | None = None
    """(n_items,) learned item biases."""


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    error = np.asarray(truth, np.float64) - np.asarray(predicted, np.float64)
    return {"rmse": round(float(np.sqrt(np.mean(error ** 2))), 4), "mae": round(float(np.mean(np.abs(error))), 4)}


def fit_biases(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int,
               reg_user: float = BIAS_REG_USER, reg_item: float = BIAS_REG_ITEM,
               sweeps: int = BIAS_SWEEPS) -> tuple[float, np.ndarray, np.ndarray]:
    """(mean, user bias, item bias) of r ≈ mean + b_u + b_i, by alternating least squares with L2.

    Each returned bias array has one extra last entry, 0, so that index -1 (unseen in training)
    reads it: an unseen user or item falls back to no bias.
    """
    ratings = np.asarray(ratings, np.float64)
    mean = float(ratings.mean())
    user_bias, item_bias = np.zeros(n_users + 1), np.zeros(n_items + 1)
    user_count = np.bincount(users, minlength=n_users)
    item_count = np.bincount(items, minlength=n_items)
    for _ in range(sweeps):
        residual = ratings - mean - item_bias[items]
        user_bias[:n_users] = np.bincount(users, residual, n_users) / (user_count + reg_user)
        residual = ratings - mean - user_bias[users]
        item_bias[:n_items] = np.bincount(items, residual, n_items) / (item_count + reg_item)
    return mean, user_bias, item_bias


def baselines(train: "pd.DataFrame", test: "pd.DataFrame", schema: dict) -> dict[str, dict[str, float]]:
    """Global mean and user+item biases, fitted on ``train``, scored on ``test``."""
    lo, hi = schema["rating_range"]
    mean, user_bias, item_bias = fit_biases(train["user"].to_numpy(), train["item"].to_numpy(),
                                            train["rating"].to_numpy(), schema["n_users"], schema["n_items"])
    users, items, truth = test["user"].to_numpy(), test["item"].to_numpy(), test["rating"].to_numpy()
    return {
        "global_mean": scores(truth, np.full(len(truth), mean)),
        "bias": scores(truth, np.clip(mean + user_bias[users] + item_bias[items], lo, hi)),
    }


def embedding_check(train: "pd.DataFrame", learned: Learned, seed: int) -> dict[str, float] | None:
    """The seed's check: OOB R² of a random forest predicting training ratings from the learned
    [user factors ‖ item factors] vs from the raw (user, item) ids. Embeddings that carry taste
    should beat ids, which a forest can only split on arbitrary ranges."""
    if learned.user_factors is None or learned.item_factors is None:
        return None
    from sklearn.ensemble import RandomForestRegressor

    progress.phase("random forests on the embeddings and on the ids")
    rows = np.random.default_rng(seed).permutation(len(train))[:RF_ROWS]
    users, items = train["user"].to_numpy()[rows], train["item"].to_numpy()[rows]
    target = train["rating"].to_numpy()[rows]
    features = {
        "rf_oob_r2_embeddings": np.hstack([learned.user_factors[users], learned.item_factors[items]]),
        "rf_oob_r2_ids": np.column_stack([users, items]),
    }
    result = {}
    for name, x in features.items():
        forest = RandomForestRegressor(n_estimators=RF_TREES, min_samples_leaf=5, oob_score=True,
                                       random_state=seed, n_jobs=-1)
        result[name] = round(float(forest.fit(x, target).oob_score_), 4)
    return result


def item_labels(items: "pd.DataFrame") -> list[str]:
    """Each item's title where the data set has one, else its original id; in index order."""
    ordered = items.sort_values("index")
    return [title if isinstance(title, str) else str(item_id)
            for title, item_id in zip(ordered["title"].astype(object), ordered["id"])]


def bias_lists(item_bias: np.ndarray, train: "pd.DataFrame", labels: list[str]) -> tuple[list[dict], list[dict]]:
    """The items with the highest and lowest learned bias, among items rated often enough."""
    count = np.bincount(train["item"].to_numpy(), minlength=len(labels))
    popular = count >= POPULAR
    candidates = np.flatnonzero(popular if popular.sum() >= 2 * BIAS_LIST else count > 0)
    order = candidates[np.argsort(item_bias[candidates], kind="stable")]

    def entry(index: int) -> dict:
        return {"item": labels[index], "bias": round(float(item_bias[index]), 4), "ratings": int(count[index])}

    return [entry(i) for i in order[::-1][:BIAS_LIST]], [entry(i) for i in order[:BIAS_LIST]]


def embedding_map(item_factors: np.ndarray, items: "pd.DataFrame", labels: list[str],
                  item_bias: np.ndarray | None, counts: np.ndarray, path: Path) -> str:
    """Standalone Bokeh HTML (resources inlined, so it opens offline) of the item factors on their
    first two principal components, coloured by the learned item bias (else by how often the item
    was rated); hover shows title, genres, bias and rating count. Returns the file name."""
    from bokeh.embed import file_html
    from bokeh.models import ColorBar, ColumnDataSource, HoverTool
    from bokeh.palettes import Viridis256
    from bokeh.plotting import figure
    from bokeh.resources import INLINE
    from bokeh.transform import linear_cmap
    from sklearn.decomposition import PCA

    components = min(2, *item_factors.shape)
    xy = np.zeros((len(item_factors), 2))
    xy[:, :components] = PCA(components).fit_transform(item_factors)
    genres = items.sort_values("index")["genres"].astype(object)
    data = {"x": xy[:, 0], "y": xy[:, 1], "item": labels, "ratings": counts[:len(labels)],
            "genres": [g if isinstance(g, str) else "" for g in genres]}
    tooltips = [("item", "@item"), ("genres", "@genres"), ("training ratings", "@ratings")]
    if item_bias is not None:
        data["bias"] = np.round(item_bias, 3)
        tooltips.append(("bias", "@bias"))
    colour, what = ("bias", "learned item bias") if item_bias is not None else ("ratings", "training ratings")
    low, high = np.percentile(data[colour], [2, 98]) if len(labels) else (0, 1)
    mapper = linear_cmap(colour, Viridis256, float(low), float(high) if high > low else float(low) + 1)
    plot = figure(title=f"item embeddings, PCA to 2-D, coloured by {what} (hover for titles)", width=820,
                  height=600, tools="pan,wheel_zoom,box_zoom,reset,save", x_axis_label="PC 1", y_axis_label="PC 2")
    plot.scatter("x", "y", source=ColumnDataSource(data), size=6, alpha=0.7, color=mapper)
    plot.add_layout(ColorBar(color_mapper=mapper["transform"], title=what), "right")
    plot.add_tools(HoverTool(tooltips=tooltips))
    path.write_text(file_html(plot, INLINE, "item embeddings"), encoding="utf-8")
    return path.name


def evaluate_ratings(dataset_dir: Path, model_dir: Path, out_dir: Path, learned: Learned, seed: int) -> dict:
    """What a ratings topic's evaluate() returns: test RMSE/MAE (predictions clipped to the rating
    range), baselines, noise floor (synthetic data), embedding check, bias lists and pictures."""
    tables, meta = load_ratings(dataset_dir)
    schema = meta["schema"]
    train, test = tables["train"], tables["test"]
    predicted = np.clip(learned.predict(test["user"].to_numpy(), test["item"].to_numpy()), *schema["rating_range"])
    result: dict = {"test": scores(test["rating"].to_numpy(), predicted),
                    "baseline": baselines(train, test, schema)}
    if "noise_rmse" in meta:
        result["noise_floor"] = {"rmse": round(meta["noise_rmse"], 4)}
    check = embedding_check(train, learned, seed)
    if check is not None:
        result["embedding_check"] = check
    labels = item_labels(tables["items"])
    if learned.item_bias is not None:
        result["item_bias_top"], result["item_bias_bottom"] = bias_lists(learned.item_bias, train, labels)
    history, summary_path = model_dir / "history.json", model_dir / "train.json"
    summary = read_json(summary_path) if summary_path.is_file() else {}
    marks = {}
    if summary.get("best_epoch"):
        refit = f"; refit on train + val for {summary['best_epoch']} epochs" if summary.get("refit_ratings") else ""
        marks[f"kept: epoch {summary['best_epoch']}{refit}"] = summary["best_epoch"]
    result["plots"] = [evaluate.plot_learning_curves(read_json(history), out_dir / "learning_curves.png", marks)] \
        if history.is_file() else []
    counts = np.bincount(train["item"].to_numpy(), minlength=len(labels))
    result["interactive"] = [] if learned.item_factors is None else [
        embedding_map(learned.item_factors, tables["items"], labels, learned.item_bias, counts, out_dir / MAP_FILE)]
    return result
