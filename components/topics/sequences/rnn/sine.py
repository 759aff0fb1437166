"""The rnn topic's regression task: predict a noisy signal's next value from the last ``window`` values.

Training windows lie wholly in the training part of the series; a validation or test target's
window may reach back into the part before it (the past is known when forecasting), never
forward. The signal is standardised with the training part's mean and standard deviation, which
the model keeps in its ``scale`` buffer. The baselines are the forecaster's classics: the last
value (persistence) and the training mean; the noise variance is the floor no predictor beats.
Evaluation also rolls the model forward on its own predictions from the start of the test part
and plots that rollout against the truth.

Imports torch at the top: the rnn topic module imports it only inside train/evaluate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from components import evaluate as shared
from components.data import load_dataset
from components.errors import DlxError
from components.files import read_json
from components.topics.sequences.rnn.network import build_model, fit, load_model, parameter_count
from components.topics.torch_loop import Batch, write_model_dir

SPLITS = ("train", "val", "test")
ROLLOUT_STEPS = 200


def _series(dataset_dir: Path) -> tuple[np.ndarray, dict[str, int], dict, dict[str, np.ndarray]]:
    """The whole observed series in time order, each split's first index, meta and the arrays."""
    arrays, meta = load_dataset(dataset_dir)
    if "series_train" not in arrays:
        raise DlxError(f"{dataset_dir}: holds no signal (series_train); the rnn regression task reads the sine data set")
    parts = [arrays[f"series_{split}"] for split in SPLITS]
    starts = dict(zip(SPLITS, np.cumsum([0] + [len(p) for p in parts[:-1]]).tolist()))
    return np.concatenate(parts).astype(np.float32), starts, meta, arrays


def windows(series: np.ndarray, start: int, stop: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs series[t-window:t] and targets series[t] for every t in [max(start, window), stop)."""
    first = max(start, window)
    inputs = np.lib.stride_tricks.sliding_window_view(series[first - window:stop - 1], window)
    return np.ascontiguousarray(inputs), series[first:stop].copy()


def _check_window(window: int, starts: dict[str, int]) -> None:
    """At least half the training part must be targets, not just context."""
    if window >= starts["val"] // 2:
        raise DlxError(f"window={window} leaves too few training windows in {starts['val']} training steps; "
                       f"choose a window below {starts['val'] // 2} or a longer series (dataset option length=)")


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def train(dataset_dir: Path, model_dir: Path, params: Any, seed: int, checkpoint_dir: Path | None,
          device: str, run: dict) -> dict:
    series, starts, meta, _ = _series(dataset_dir)
    _check_window(params.window, starts)
    mean, std = float(series[:starts["val"]].mean()), float(series[:starts["val"]].std()) or 1.0
    scaled = (series - mean) / std
    x_train, y_train = (torch.as_tensor(a, device=device) for a in windows(scaled, 0, starts["val"], params.window))
    x_val, y_val = (torch.as_tensor(a, device=device)
                    for a in windows(scaled, starts["val"], starts["test"], params.window))
    observed_val = series[starts["val"]:starts["test"]]
    persistence = _mse(series[starts["val"] - 1:starts["test"] - 1], observed_val)
    model = build_model(params, seed, device, inputs=1, outputs=1)
    model.scale.copy_(torch.tensor([mean, std]))
    print(f"sine: {len(x_train)} training windows of {params.window} steps, {len(x_val)} validation targets; "
          f"cell {params.cell}, {parameter_count(model)} parameters; device {device}; "
          f"validation MSE of the last value (persistence) {persistence:.4f}, noise floor "
          f"{meta['truth']['noise_sigma'] ** 2:.4f}", flush=True)

    def batches(epoch: int):
        order = torch.as_tensor(np.random.default_rng([seed, epoch]).permutation(len(x_train)), device=device)
        for index in order.split(params.batch_size):
            yield Batch((x_train[index], y_train[index]), len(index), len(index))

    def scores(loss: float) -> dict[str, float]:
        predicted = torch.cat([model(x).squeeze(1).float() for x in x_val.split(1024)])
        return {"mse": loss * std ** 2, "val_mse": float(((predicted - y_val) ** 2).mean()) * std ** 2}

    loop = fit(model, params, device, checkpoint_dir, run, batches,
               lambda out, y: ((out.squeeze(1).float() - y) ** 2).mean(), scores, "sequences")
    summary = loop.summary(seed=seed, task="sequences", val_mse=round(loop.log.history["val_mse"][-1], 5),
                           val_persistence_mse=round(persistence, 5))
    write_model_dir(model_dir, model.state_dict(), params, loop.log.history, summary)
    return summary


def predict(model: Any, inputs: np.ndarray) -> np.ndarray:
    """Next values (signal units) after each row of ``inputs`` (rows of ``window`` past values)."""
    mean, std = (float(v) for v in model.scale)
    with torch.no_grad():
        x = torch.as_tensor((inputs - mean) / std, dtype=torch.float32)
        out = torch.cat([model(part).squeeze(1) for part in x.split(1024)]) if len(x) else torch.zeros(0)
    return out.numpy() * std + mean


def rollout(model: Any, context: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` values predicted one after another, each fed back as the newest input."""
    window = list(context.astype(np.float32))
    produced = []
    for _ in range(steps):
        value = float(predict(model, np.asarray(window[-len(context):], dtype=np.float32)[None])[0])
        produced.append(value)
        window.append(value)
    return np.asarray(produced)


def _scores(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    mse = _mse(true, predicted)
    return {"mse": round(mse, 5), "rmse": round(mse ** 0.5, 5)}


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path, params: Any) -> dict:
    """Test MSE next to persistence and the training mean, the noise floor, and a rollout plot."""
    series, starts, meta, arrays = _series(dataset_dir)
    model = load_model(model_dir, params, inputs=1, outputs=1)
    inputs, target = windows(series, starts["test"], len(series), params.window)
    first = len(series) - len(target)
    sigma = meta["truth"]["noise_sigma"]
    steps = min(ROLLOUT_STEPS, len(series) - starts["test"])
    context = series[starts["test"] - params.window:starts["test"]]
    rolled = rollout(model, context, steps)
    clean = arrays["clean_test"][:steps]
    return {
        "test": _scores(target, predict(model, inputs)),
        "baseline": {"persistence": _scores(target, series[first - 1:-1]),
                     "mean": _scores(target, np.full(len(target), series[:starts["val"]].mean()))},
        "noise_floor": {"mse": round(sigma ** 2, 5), "rmse": sigma},
        "rollout": {"steps": steps, "mse_vs_clean": round(_mse(rolled, clean), 5),
                    "mse_vs_observed": round(_mse(rolled, series[starts["test"]:starts["test"] + steps]), 5)},
        "plots": [shared.plot_learning_curves(read_json(model_dir / "history.json"), out_dir / "learning_curves.png"),
                  _plot_rollout(series, starts["test"], params.window, rolled, clean, out_dir / "rollout.png")],
    }


def _plot_rollout(series: np.ndarray, start: int, window: int, rolled: np.ndarray, clean: np.ndarray,
                  path: Path) -> str:
    plt = shared.pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    t = np.arange(start, start + len(rolled))
    ax.plot(np.arange(start - window, start), series[start - window:start], color="gray", linewidth=1,
            label=f"context ({window} observed values)")
    ax.scatter(t, series[start:start + len(rolled)], s=5, color="gray", alpha=0.6, label="observed (noisy)")
    ax.plot(t, clean, color="black", linewidth=1, label="true signal")
    ax.plot(t, rolled, color="tab:red", linewidth=1.5, label="rollout on its own predictions")
    ax.axvline(start, color="gray", linestyle=":", linewidth=1)
    ax.set(xlabel="time step", ylabel="value", title="autoregressive rollout from the start of the test part")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    return shared.save_figure(fig, path)
