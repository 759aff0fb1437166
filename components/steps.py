"""The three pipeline steps as plain functions over directories.

ops.py wraps these as Kubeflow components and the SageMaker entrypoint calls them directly, so
everything a step does is testable without kfp.
"""
from __future__ import annotations

import json
from pathlib import Path

from components.data import prepare_dataset
from components.evaluate import evaluate_run
from components.params import from_dict
from components.registry import get_topic


def prepare(dataset: str, data_dir: str, seed: int, out_dir: str | Path) -> dict:
    """Build the dataset artifact; an empty ``data_dir`` means the default location."""
    return prepare_dataset(dataset, out_dir, data_dir=data_dir or None, seed=seed)


def train(
    topic: str, params_json: str, seed: int, dataset_dir: str | Path, model_dir: str | Path,
    checkpoint_dir: str | Path | None = None,
) -> dict:
    spec = get_topic(topic)
    params = from_dict(spec.params, json.loads(params_json or "{}"), topic)
    return spec.train(Path(dataset_dir), Path(model_dir), params, seed, Path(checkpoint_dir) if checkpoint_dir else None)


def evaluate(topic: str, dataset_dir: str | Path, model_dir: str | Path, out_dir: str | Path) -> dict:
    return evaluate_run(get_topic(topic), Path(dataset_dir), Path(model_dir), Path(out_dir))
