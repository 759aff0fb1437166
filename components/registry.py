"""The topic registry: every consumer (CLI, pipelines, SageMaker entrypoint, benchmarks) reads it.

Adding a topic is one module (or package) under its family in components/topics/ that defines
``TOPIC`` and one line in ``_MODULES``. Topic modules are cheap to import: frameworks load inside train/evaluate.
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from components.errors import DlxError
from components.params import override

_MODULES = (
    "components.topics.images.mnist_mlp",
    "components.topics.images.mnist_cnn",
    "components.topics.optimization.pytorch_gd",
    "components.topics.ratings.cf_gd",
    "components.topics.ratings.cf_regularized",
    "components.topics.ratings.catvar_keras",
    "components.topics.ratings.catvar_split",
    "components.topics.ratings.catvar_homebrew",
    "components.topics.text.text_vectors",
    "components.topics.text.random_embeddings",
    "components.topics.text.word_embeddings",
    "components.topics.sequences.text_gen",
    "components.topics.sequences.rnn",
)


@dataclass(frozen=True)
class Topic:
    """What the pipeline needs to know about a topic, and nothing about how it trains."""

    name: str
    description: str
    framework: str
    datasets: tuple[str, ...]
    """Data sets the topic accepts; the first is the offline default."""
    params: type
    """Frozen dataclass of hyperparameters (see components.params)."""
    train: Callable[..., dict]
    """train(dataset_dir, model_dir, params, seed, checkpoint_dir=None) -> training summary.

    Writes the model dir. With a checkpoint_dir the trainer saves its progress there each epoch
    and resumes from what it finds, so an interrupted (spot) job carries on where it stopped."""
    evaluate: Callable[[Path, Path, Path], dict]
    """evaluate(dataset_dir, model_dir, out_dir) -> {"test", "baseline", ...}; writes plots."""
    main_metric: str
    higher_is_better: bool = True
    cpu: str = "2"
    """CPU request of the train step on Kubeflow."""
    memory: str = "4G"
    """Memory request of the train step on Kubeflow."""
    presets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Per-data-set defaults over the dataclass's (which suit the real data set), like nanoGPT's
    per-dataset configs: 1,300 digits need smaller batches and more epochs than 54,000 MNIST images."""
    dataset_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Per-data-set default options under the user's --dataset-option (text-gen reads a text-file
    as one plain stream: {"text-file:PATH": {"layout": "plain"}})."""
    references: Mapping[str, str] = field(default_factory=dict)
    """Baselines the lesson is expected to tie or lose to, with why (pytorch-gd against least squares,
    the exact optimum): the verdict says how close the topic comes instead of whether it beats them."""
    dataset_metrics: Mapping[str, tuple[str, bool]] = field(default_factory=dict)
    """Per-data-set (main_metric, higher_is_better) where the task differs with the data: rnn
    regresses a signal (MSE) or classifies text (accuracy)."""

    @property
    def default_dataset(self) -> str:
        return self.datasets[0]

    def check_dataset(self, name: str | None) -> str:
        """``name`` (default: the offline data set) if this topic takes it; ``FAMILY:PATH`` in
        ``datasets`` admits any ``FAMILY:<path>`` (e.g. ratings-file:my.csv)."""
        name = name or self.default_dataset
        if name not in self.datasets and _family(name) not in self.datasets:
            raise DlxError(f"topic {self.name} does not take data set '{name}'; valid: {', '.join(self.datasets)}")
        return name

    def params_for(self, dataset: str, overrides: Iterable[str] = ()) -> Any:
        """The dataclass defaults, then the data set's preset, then the user's NAME=VALUE overrides."""
        preset = [f"{name}={value}" for name, value in _lookup(self.presets, dataset, {}).items()]
        return override(self.params, [*preset, *overrides], self.name)

    def options_for(self, dataset: str, options: Mapping[str, str]) -> dict[str, str]:
        """The topic's default options for ``dataset`` under the user's."""
        return {**_lookup(self.dataset_options, dataset, {}), **options}

    def for_dataset(self, dataset: str) -> Topic:
        """This topic with the main metric it reports on ``dataset``."""
        metric = _lookup(self.dataset_metrics, dataset, None)
        if metric is None:
            return self
        return dataclasses.replace(self, main_metric=metric[0], higher_is_better=metric[1])


def _family(dataset: str) -> str | None:
    """``ratings-file:x.csv`` -> ``ratings-file:PATH``; None for a plain name."""
    return dataset.split(":", 1)[0] + ":PATH" if ":" in dataset else None


def _lookup(mapping: Mapping[str, Any], dataset: str, default: Any) -> Any:
    """``mapping[dataset]``, else the entry of its family."""
    return mapping.get(dataset, mapping.get(_family(dataset) or "", default))


def topics() -> dict[str, Topic]:
    found = (importlib.import_module(module).TOPIC for module in _MODULES)
    return {topic.name: topic for topic in found}


def get_topic(name: str) -> Topic:
    registry = topics()
    if name not in registry:
        raise DlxError(f"unknown topic '{name}'; valid topics: {', '.join(registry)} (see `dlx list`)")
    return registry[name]
