"""One job description: what a run trains, whoever runs it.

The CLI builds a Job from its flags (``Job.create``); the local runner and the Kubeflow submitter
pass its ``arguments()`` to the pipeline, one entry per pipeline parameter (the job's fields and
every topic parameter by its own name, so a run form shows each with its type); the SageMaker
launcher sends the same entries as the training job's hyperparameters; the container entrypoint
reads them back (``Job.from_arguments``), and each pipeline step parses its share of them with
the same functions. Every way in checks the whole job before any work starts.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.data import get_dataset, parse_options
from components.errors import DlxError
from components.params import from_dict, from_values, parameter_types, split_pair, to_dict
from components.registry import Topic, get_topic

ARGUMENTS = ("dataset", "dataset_options", "data_dir", "seed")
"""The job's fields as the pipeline's parameters (the topic is the pipeline itself); the topic's
parameters come beside them, each by its name."""
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Job:
    topic: Topic
    dataset: str
    params: Any
    """The topic's frozen params dataclass: defaults, then the data set's preset, then the user's."""
    dataset_options: dict[str, str] = field(default_factory=dict)
    """The data set's NAME=VALUE options (strings, checked against the data set's options class)."""
    seed: int = 0
    data_dir: str = ""
    """Where the data set's files are (a directory or s3:// prefix); empty: the default lookup."""

    @classmethod
    def create(cls, topic: str, dataset: str | None = None, *, options: Mapping[str, str] | Iterable[str] = (),
               params: Mapping[str, str] | Iterable[str] = (), seed: int = 0, data_dir: str = "") -> Job:
        """The job for ``topic`` from command-line strings: NAME=VALUE options and parameter overrides."""
        spec = get_topic(topic)
        name = spec.check_dataset(dataset)
        given = dict(options) if isinstance(options, Mapping) else dict(split_pair(item) for item in options)
        chosen = spec.options_for(name, given)
        parse_options(name, chosen)
        check_seed(seed, "--seed")
        if data_dir and not get_dataset(name).needs_location:
            raise DlxError(f"dataset {name!r} takes no data dir (it is bundled or names its file); drop --data-dir")
        return cls(spec, name, spec.params_for(name, params), chosen, seed, data_dir)

    @classmethod
    def from_arguments(cls, topic: str, values: Mapping[str, Any], what: str = "argument",
                       data_dir: str | None = None) -> Job:
        """The job from its ``arguments()`` (values may be strings, as SageMaker passes them); a
        parameter left out keeps the data set's default. ``what`` names the entries in errors
        ("hyperparameter"); ``data_dir``, when given, is where the data is and not an entry."""
        spec = get_topic(topic)
        names = parameter_types(spec.params)
        fields = [name for name in ARGUMENTS if data_dir is None or name != "data_dir"]
        unknown = sorted(set(values) - set(fields) - set(names))
        if unknown:
            raise DlxError(f"unknown {what}(s) {', '.join(unknown)} for {spec.name}; valid: {', '.join(fields)}, "
                           f"or a parameter: {', '.join(names)}")
        name = spec.check_dataset(values.get("dataset") or None)
        options = parse_options_json(name, values.get("dataset_options", "{}"), what)
        given = {key: value for key, value in values.items() if key in names}
        params = from_values(spec.params, spec.params_for(name), given, spec.name)
        location = str(values.get("data_dir", "")) if data_dir is None else data_dir
        return cls(spec, name, params, options, parse_seed(values.get("seed", 0), what), location)

    def arguments(self, params: bool = True) -> dict[str, Any]:
        """The pipeline's parameters: ``ARGUMENTS`` and (unless ``params`` is false) every topic parameter."""
        fields = {"dataset": self.dataset, "dataset_options": json.dumps(self.dataset_options),
                  "data_dir": self.data_dir, "seed": self.seed}
        return {**fields, **to_dict(self.params)} if params else fields

    def params_json(self) -> str:
        """Every parameter as one JSON object, as the train step takes them."""
        return json.dumps(to_dict(self.params))


def _json_object(name: str, text: Any, example: str, what: str) -> dict:
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError) as exc:
        raise DlxError(f"{what} {name} is not JSON ({exc}); write it like {example}") from None
    if not isinstance(value, dict):
        raise DlxError(f"{what} {name} must be a JSON object like {example}, not {text}")
    return value


def parse_params_json(topic: Topic, text: Any, what: str = "argument") -> Any:
    """The topic's params from a JSON object of every parameter (names and types checked)."""
    return from_dict(topic.params, _json_object("params_json", text, '{"epochs": 5}', what), topic.name)


def parse_options_json(dataset: str, text: Any, what: str = "argument") -> dict[str, str]:
    """The data set's options from a JSON object of NAME: VALUE strings, checked."""
    options = {str(k): str(v) for k, v in _json_object("dataset_options", text, '{"split": "u1"}', what).items()}
    parse_options(dataset, options)
    return options


def parse_seed(value: Any, what: str = "argument") -> int:
    try:
        seed = int(value)
    except (TypeError, ValueError):
        raise DlxError(f"{what} seed must be a whole number, not '{value}'") from None
    check_seed(seed, f"{what} seed")
    return seed


def check_seed(seed: int, name: str) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise DlxError(f"{name} must be between 0 and 2**32 - 1, got {seed}")
