"""The three pipeline steps as plain functions over directories.

ops.py wraps these as Kubeflow components and the SageMaker entrypoint calls them directly, so
everything a step does is testable without kfp.
"""
from __future__ import annotations

from pathlib import Path

from components import distributed, model_files, progress, tracking
from components.data import prepare_dataset
from components.evaluate import evaluate_run
from components.files import read_json, write_json
from components.errors import DlxError
from components.job import parse_options_json, parse_params_json
from components.leaderboard import champion_for
from components.model_registry import REGISTRY_PREFIX, promote_registered
from components.promotion import promote
from components.registry import get_topic
from components.report import write_report


def prepare(dataset: str, data_dir: str, seed: int, out_dir: str | Path, options_json: str = "{}") -> dict:
    """Build the dataset artifact; an empty ``data_dir`` means the default location.

    ``options_json``: the data set's own NAME=VALUE options as a JSON object of strings (a Job's).
    """
    progress.phase(f"preparing {dataset}")
    return prepare_dataset(dataset, out_dir, data_dir=data_dir or None, seed=seed,
                           options=parse_options_json(dataset, options_json))


def train(
    topic: str, params_json: str, seed: int, dataset_dir: str | Path, model_dir: str | Path,
    checkpoint_dir: str | Path | None = None,
) -> dict:
    """Train ``topic`` with a Job's ``params_json`` (every parameter, as a JSON object) on the artifact."""
    spec = get_topic(topic)
    params = parse_params_json(spec, params_json)
    processes = distributed.requested_processes()
    if processes > 1 or distributed.nodes() > 1:
        distributed.check_parallel(spec.name, spec.framework)
        if distributed.world()[1] == 1:  # not yet under torchrun: start it, each rank comes back here
            return distributed.launch(topic, params_json, seed, Path(dataset_dir), Path(model_dir),
                                       Path(checkpoint_dir) if checkpoint_dir else None, processes)
    progress.phase(f"loading {spec.framework}")
    result = spec.train(Path(dataset_dir), Path(model_dir), params, seed, Path(checkpoint_dir) if checkpoint_dir else None)
    if distributed.is_main():  # the process that wrote the model: record what it wrote
        model_files.write_manifest(model_dir)
    return result


def evaluate(
    topic: str, dataset_dir: str | Path, model_dir: str | Path, out_dir: str | Path, *,
    champion: str = "", margin: float = 0.0, model_uri: str = "", run_id: str = "",
) -> dict:
    """Score the model; with tracking on, log the run to MLflow; with a ``champion``, apply the
    promotion rule: a record URI (components.promotion; a folder ending in ``/`` holds TOPIC.json),
    or ``models:/NAME`` for the MLflow
    registry (components.model_registry; ``models:/`` alone names it dlx-<topic>).

    The decision lands in ``out_dir``/promotion.json and under "promotion" in metrics.json.
    """
    spec = get_topic(topic).for_dataset(read_json(Path(dataset_dir) / "meta.json")["dataset"])
    out_dir = Path(out_dir)
    registry = champion.startswith(REGISTRY_PREFIX)
    if not registry:
        champion = champion_for(champion, spec.name)
    if registry and not tracking.enabled():
        raise DlxError(f"--champion {champion} promotes through the MLflow registry, which needs a tracking server: "
                       f"pass --tracking-uri (or set {tracking.URI_ENV}), or give a champion record path")
    progress.phase("scoring the model")
    model_files.verify(model_dir)
    metrics = evaluate_run(spec, Path(dataset_dir), Path(model_dir), out_dir)
    tracked = ""
    if tracking.enabled():
        progress.phase("logging to MLflow")
        tracked = tracking.log_evaluated(metrics, Path(model_dir), out_dir, run_name=run_id)
        metrics["mlflow_run_id"] = tracked
    if champion:
        progress.phase("comparing with the champion")
        if registry:
            decision = promote_registered(spec, metrics, dataset_dir, tracked, margin=margin,
                                          name=champion.removeprefix(REGISTRY_PREFIX))
        else:
            decision = promote(spec, metrics, dataset_dir, model_dir, champion=champion, margin=margin,
                               model_uri=model_uri, run_id=run_id)
        write_json(out_dir / "promotion.json", decision)
        metrics["promotion"] = decision
        write_report(metrics, out_dir, out_dir / "report.html")
        if tracked:
            tracking.log_decision(tracked, decision, out_dir)
    write_json(out_dir / "metrics.json", metrics)
    return metrics
