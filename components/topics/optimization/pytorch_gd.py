"""pytorch-gd: gradient descent written by hand with autograd, on a generated linear regression.

The model is two plain tensors (weights and bias) with ``requires_grad``; autograd supplies the
gradients and the update is written out under ``torch.no_grad()``: plain gradient descent, or
momentum in exactly torch.optim.SGD's formulation, so ``optimizer=torch-sgd`` gives the same
parameters and the tests prove it. Minibatch order comes from (seed, epoch) alone, so a run resumed
from its per-epoch checkpoint repeats the uninterrupted run bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components import evaluate as shared
from components.data import load_dataset
from components.files import read_json
from components.params import help_field, to_dict
from components.registry import Topic
from components.topics.optimizers import HandSGD
from components.topics.torch_loop import MODEL_FILE, Batch, TorchParams, TrainLoop, pick_device, train_val_words, write_model_dir


@dataclass(frozen=True)
class Params(TorchParams):
    optimizer: Literal["plain", "momentum", "torch-sgd"] = help_field(
        "momentum", "update rule: plain GD or momentum written by hand, or torch.optim.SGD")
    learning_rate: float = help_field(0.05, "step size", above=0)
    momentum: float = help_field(0.9, "momentum coefficient of momentum and torch-sgd (plain ignores it)",
                                 at_least=0, below=1)
    epochs: int = help_field(100, "passes over the training split", at_least=1)
    batch_size: int = help_field(0, "examples per step; 0 = the whole training split (full-batch gradient descent)",
                                 at_least=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = help_field(
        "fp32", "autocast: fp32 keeps the exact comparison with least squares; auto is bf16 on CUDA")


def make_optimizer(name: str, tensors: list[Any], params: Params) -> Any:
    import torch

    if name == "torch-sgd":
        return torch.optim.SGD(tensors, lr=params.learning_rate, momentum=params.momentum)
    return HandSGD(tensors, params.learning_rate, params.momentum if name == "momentum" else 0.0)


def _mse(weight: Any, bias: Any, x: Any, y: Any) -> Any:
    return ((x @ weight + bias - y) ** 2).mean()


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    """Fit w and b, then write model.pt (a state_dict), params.json, history.json and train.json.

    With ``checkpoint_dir`` the parameters, optimizer state (velocity) and epoch log are saved
    there after every epoch; a rerun of the same run continues after the last saved epoch.
    """
    import torch

    device = pick_device(params.device)
    arrays, meta = load_dataset(dataset_dir)
    x, y, x_val, y_val = (torch.as_tensor(arrays[k], device=device) for k in ("x_train", "y_train", "x_val", "y_val"))
    generator = torch.Generator().manual_seed(seed)
    weight = (0.01 * torch.randn(x.shape[1], generator=generator)).to(device).requires_grad_()
    bias = torch.zeros((), device=device, requires_grad=True)
    tensors = {"weight": weight, "bias": bias}
    run = {"params": to_dict(params), "seed": seed,
           **{key: meta[key] for key in ("dataset", "inputs", "splits", "seed")}}
    loop = TrainLoop(tensors, make_optimizer(params.optimizer, [weight, bias], params), epochs=params.epochs,
                     device=device, checkpoint_dir=checkpoint_dir, run=run, precision=params.precision,
                     divergence_hint="lower learning_rate (or momentum)")
    print(f"training on {len(x)} examples, validating on {len(x_val)}; {x.shape[1] + 1} parameters; "
          f"optimizer {params.optimizer}; device {device}", flush=True)

    def batches(epoch: int):
        order = np.random.default_rng([seed, epoch]).permutation(len(x))
        size = params.batch_size or len(order)
        for start in range(0, len(order), size):
            index = torch.as_tensor(order[start:start + size], device=device)
            yield Batch((x[index], y[index]), len(index), len(index))

    def scores(loss: float) -> dict[str, float]:
        return {"mse": float(_mse(weight, bias, x, y)), "val_mse": float(_mse(weight, bias, x_val, y_val))}

    loop.fit(batches, lambda xb, yb: _mse(weight, bias, xb, yb), scores, describe=train_val_words)
    summary = loop.summary(seed=seed, val_mse=loop.log.history["val_mse"][-1])
    write_model_dir(model_dir, tensors, params, loop.log.history, summary)
    return summary


def _load_model(model_dir: Path) -> tuple[np.ndarray, float]:
    import torch

    state = torch.load(model_dir / MODEL_FILE, map_location="cpu", weights_only=True)
    return state["weight"].double().numpy(), float(state["bias"])


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    mse = float(np.mean((y_true.astype(np.float64) - y_pred) ** 2))
    return {"mse": round(mse, 4), "rmse": round(mse ** 0.5, 4)}


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """Test MSE/RMSE next to the train-mean and least-squares baselines and the noise floor (sigma²)."""
    arrays, meta = load_dataset(dataset_dir)
    weight, bias = _load_model(model_dir)
    x_train, x_test = (arrays[k].astype(np.float64) for k in ("x_train", "x_test"))
    y_test = arrays["y_test"]
    predicted = x_test @ weight + bias
    design = np.column_stack([x_train, np.ones(len(x_train))])
    solution = np.linalg.lstsq(design, arrays["y_train"].astype(np.float64), rcond=None)[0]
    truth = meta["truth"]
    true_weights = np.asarray(truth["weights"])
    sigma = truth["noise_sigma"]
    return {
        "test": _scores(y_test, predicted),
        "baseline": {
            "train_mean": _scores(y_test, np.full(len(y_test), arrays["y_train"].astype(np.float64).mean())),
            "least_squares": _scores(y_test, x_test @ solution[:-1] + solution[-1]),
        },
        "noise_floor": {"mse": round(sigma ** 2, 4), "rmse": sigma},
        "coefficients": {
            "true": {"weights": truth["weights"], "bias": truth["bias"]},
            "learned": {"weights": [round(float(w), 4) for w in weight], "bias": round(bias, 4)},
            "max_abs_error": round(float(np.abs(np.append(weight, bias) - [*true_weights, truth["bias"]]).max()), 4),
            "least_squares_max_abs_error": round(float(np.abs(solution - [*true_weights, truth["bias"]]).max()), 4),
        },
        "plots": [
            shared.plot_learning_curves(read_json(model_dir / "history.json"), out_dir / "learning_curves.png"),
            _plot_predicted_vs_true(y_test, predicted, out_dir / "predicted_vs_true.png"),
        ],
    }


def _plot_predicted_vs_true(y_true: np.ndarray, y_pred: np.ndarray, path: Path) -> str:
    plt = shared.pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(y_true, y_pred, s=6, alpha=0.5)
    low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], color="gray", linewidth=1, label="y = x")
    ax.set(xlabel="true y", ylabel="predicted y", title="test split: predicted vs true")
    ax.grid(alpha=0.3)
    ax.legend()
    return shared.save_figure(fig, path)


TOPIC = Topic(
    name="pytorch-gd", description="gradient descent by hand on autograd, vs torch.optim",
    framework="pytorch", datasets=("regression",), params=Params, train=train, evaluate=evaluate,
    main_metric="rmse", higher_is_better=False,
    references={"least_squares": "the exact optimum"},
)
