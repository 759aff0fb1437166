"""cf-gd: matrix factorisation by full-batch gradient descent, the optimiser written by hand.

The factor model (components.topics.ratings.factors) without biases, fitted to every training
rating at every step; the update is momentum or AdaGrad written out
(components.topics.optimizers), each equal to its torch.optim counterpart.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.epoch_log import run_identity
from components.params import help_field
from components.registry import Topic
from components.topics.ratings import factors
from components.topics.torch_loop import Batch, TrainLoop, cpu_threads, pick_device, train_val_words, write_model_dir


@dataclass(frozen=True)
class Params(factors.FactorParams):
    optimizer: Literal["momentum", "adagrad"] = help_field(
        "adagrad", "hand-written update: gradient descent with momentum, or AdaGrad")
    steps_per_epoch: int = help_field(10, "full-batch gradient steps per epoch", at_least=1)


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    """Fit the factors by full-batch steps; write model.pt, params.json, history.json and train.json.

    With ``checkpoint_dir`` the factors, optimizer state and epoch log are saved there after
    every epoch; a rerun of the same run continues after the last saved epoch.
    """
    with cpu_threads(params.threads):
        device = pick_device(params.device)
        splits, meta = factors.load_splits(dataset_dir, params.y_range, device)
        train_split = splits["train"]
        tensors = factors.init_tensors(meta, train_split, params.factors, params.init_std, params.y_range, False,
                                       seed, device)
        optimizer = factors.hand_optimizer(params.optimizer, list(tensors.values()), params)
        loop = TrainLoop(tensors, optimizer, epochs=params.epochs, device=device, checkpoint_dir=checkpoint_dir,
                         run=run_identity(params, seed, meta), precision=params.precision, unit="ratings",
                         divergence_hint="lower learning_rate")
        print(f"training on {len(train_split)} ratings, validating on {len(splits['val'])}; "
              f"{sum(t.numel() for t in tensors.values())} parameters; optimizer {params.optimizer}; device {device}",
              flush=True)

        def batches(epoch: int):
            for _ in range(params.steps_per_epoch):
                yield Batch((train_split,), len(train_split), len(train_split))

        loop.fit(batches, lambda split: factors.squared_error(tensors, split, params.y_range),
                 lambda loss: factors.epoch_scores(tensors, splits, params.y_range), describe=train_val_words)
        result = loop.summary(seed=seed)
        write_model_dir(model_dir, tensors, params, loop.log.history, result)
        return result


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """The shared ratings evaluation of the saved factor model."""
    return factors.evaluate(dataset_dir, model_dir, out_dir)


TOPIC = Topic(
    name="cf-gd", description="factorisation by full-batch GD, AdaGrad by hand",
    framework="pytorch", datasets=factors.DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="rmse", higher_is_better=False,
    # nothing here regularises, so the MovieLens defaults are few factors and few steps; the synthetic
    # truth is rank 5 plus biases, which this bias-free model carries in 2 more factors
    presets={"synthetic-ratings": {"factors": "7", "init_std": "0.1", "learning_rate": "0.1", "epochs": "40"}},
)
