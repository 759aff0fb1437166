"""Tracked runs in MLflow: every evaluated run, wherever it ran, as one MLflow run.

Tracking is on when $MLFLOW_TRACKING_URI is set (the CLI sets it from --tracking-uri or
``[mlflow]`` in dlx.toml and hands it to every step, pipeline pod and SageMaker job); without it
nothing is logged and mlflow is never imported. The evaluate step logs: the parameters, each
epoch's training and validation figures (step = epoch), the test metrics and every baseline, the
data set's fingerprints (the test split's sha256 and each input file's), tags (topic, data set,
target, dlx version, git commit when known) and the report, the plots and the model as
artifacts. A sweep is a parent run whose children are its trials (logged by the choose step);
the sweep's evaluate step then logs the chosen model's test figures into the parent.
"""
from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from components.errors import DlxError
from components.files import read_json

URI_ENV, EXPERIMENT_ENV = "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"
TARGET_ENV = "DLX_TARGET"
"""Where the run runs: local, docker, kubeflow, sagemaker (set by each launcher)."""
COMMIT_ENV = "DLX_GIT_COMMIT"
RUN_NAME_ENV = "DLX_RUN_NAME"
"""The MLflow run's name: a local run's directory name (default: the pipeline run's id)."""
DEFAULT_EXPERIMENT = "dlx"
PARENT_FILE = "tracking.json"
"""In a sweep's chosen model directory: the parent run its evaluate step logs into."""


def enabled() -> bool:
    return bool(os.environ.get(URI_ENV))


@contextmanager
def mlflow_errors(action: str) -> Iterator[None]:
    """An MLflow failure (server down, refused request) as one line naming the server."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    # A request-header plugin installed beside the SageMaker SDK fails on every call outside
    # SageMaker and warns each time; the headers it would add are not needed here.
    logging.getLogger("mlflow.tracking.request_header.registry").setLevel(logging.ERROR)
    try:
        yield
    except (MlflowException, RequestException, OSError) as exc:
        first = " ".join(str(exc).split())[:300]
        raise DlxError(f"MLflow at {os.environ.get(URI_ENV)}: {action} failed ({first}); check the tracking "
                       f"server (--tracking-uri / {URI_ENV}) or unset it to run untracked") from None


def check_server(uri: str) -> None:
    """Fail in one line before any work when an http(s) tracking server does not answer."""
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10) as answer:
            answer.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DlxError(f"MLflow tracking server {uri} does not answer ({reason}); start it, fix --tracking-uri "
                       f"/ {URI_ENV}, or drop it to run untracked") from None


def git_commit() -> str | None:
    """$DLX_GIT_COMMIT, else the commit of the working tree the code runs from, if it is one."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def run_tags(metrics: Mapping[str, Any], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    tags = {"dlx.topic": metrics["topic"], "dlx.dataset": metrics["dataset"],
            "dlx.target": os.environ.get(TARGET_ENV, "local"), "dlx.version": str(metrics.get("dlx_version", "")),
            "dlx.verdict": str(metrics.get("verdict", ""))[:500]}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return {**tags, **(extra or {})}


def flat_params(params: Mapping[str, Any]) -> dict[str, str]:
    """MLflow params are strings: lists as NAME=VALUE writes them."""
    from components.params import format_value

    return {name: format_value(value) for name, value in params.items()}


def _log_history(client: Any, run_id: str, history: Mapping[str, list]) -> None:
    from mlflow.entities import Metric

    stamp = _now_ms()
    figures = [Metric(name, float(value), stamp, epoch) for name, values in history.items()
               if isinstance(values, list) for epoch, value in enumerate(values, start=1)
               if isinstance(value, (int, float))]
    for start in range(0, len(figures), 1000):  # MLflow's batch limit
        client.log_batch(run_id, metrics=figures[start:start + 1000])


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def test_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The test figures and each baseline's, as MLflow metric names."""
    figures = {f"test_{name}": float(value) for name, value in metrics["test"].items()
               if isinstance(value, (int, float))}
    for baseline, values in metrics.get("baseline", {}).items():
        figures.update({f"baseline_{baseline}_{name}": float(value) for name, value in values.items()
                        if isinstance(value, (int, float))})
    return figures


def log_evaluated(metrics: dict, model_dir: Path, evaluation_dir: Path, *, run_name: str = "",
                  tags: Mapping[str, str] | None = None) -> str:
    """Log one evaluated run (or, in a sweep, the chosen model into the sweep's parent run); its run id."""
    import mlflow
    from mlflow import MlflowClient

    parent = model_dir / PARENT_FILE
    with mlflow_errors("logging the run"):
        client = MlflowClient()
        if parent.is_file():
            run_id = read_json(parent)["run_id"]
            client.set_tag(run_id, "dlx.verdict", str(metrics.get("verdict", ""))[:500])
        else:
            experiment = mlflow.set_experiment(os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT)
            local = {"dlx.run_id": os.environ[RUN_NAME_ENV]} if os.environ.get(RUN_NAME_ENV) else {}
            run_name = os.environ.get(RUN_NAME_ENV) or run_name
            run_id = client.create_run(experiment.experiment_id, run_name=run_name or None,
                                       tags=run_tags(metrics, {**local, **(tags or {})})).info.run_id
        client.log_batch(run_id, params=_params(metrics["params"]))
        history = model_dir / "history.json"
        if history.is_file():
            _log_history(client, run_id, read_json(history))
        _log_figures(client, run_id, {**test_metrics(metrics), "train_seconds": metrics.get("train_seconds")})
        for name, value in _data_tags(metrics).items():
            client.set_tag(run_id, name, value)
        for path in sorted(evaluation_dir.glob("*")):
            if path.is_file() and path.suffix in (".html", ".png", ".json"):
                client.log_artifact(run_id, str(path), "evaluation")
        if model_dir.is_dir():
            client.log_artifacts(run_id, str(model_dir), "model")
        client.set_terminated(run_id)
    return run_id


def _params(params: Mapping[str, Any]) -> list:
    from mlflow.entities import Param

    return [Param(name, value[:6000]) for name, value in flat_params(params).items()]


def _log_figures(client: Any, run_id: str, figures: Mapping[str, float | None]) -> None:
    from mlflow.entities import Metric

    stamp = _now_ms()
    client.log_batch(run_id, metrics=[Metric(name, float(value), stamp, 0) for name, value in figures.items()
                                      if value is not None])


def _data_tags(metrics: Mapping[str, Any]) -> dict[str, str]:
    tags = {"dlx.test_fingerprint": str(metrics.get("test_fingerprint", "")),
            "dlx.data_source": str(metrics.get("data_source", ""))[:500]}
    for name, info in (metrics.get("data_inputs") or {}).items():
        digest = info.get("sha256") if isinstance(info, Mapping) else info
        if digest:
            tags[f"dlx.data.{name}.sha256"] = str(digest)
    return tags


def log_decision(run_id: str, decision: Mapping[str, Any], evaluation_dir: Path) -> None:
    """The promotion decision on the run: a tag, a metric and promotion.json (the report anew)."""
    from mlflow import MlflowClient

    with mlflow_errors("logging the promotion"):
        client = MlflowClient()
        client.set_tag(run_id, "dlx.promotion", decision["reason"][:5000])
        _log_figures(client, run_id, {"promoted": float(decision["promoted"])})
        for name in ("promotion.json", "report.html"):
            client.log_artifact(run_id, str(evaluation_dir / name), "evaluation")


def use_local_store(root: Path, experiment: str = "dlx-local") -> str:
    """Point tracking at the SQLite store beside the local runs (``root``/mlflow.db, artifacts in
    ``root``/mlartifacts) and its experiment; the tracking URI."""
    import mlflow
    from mlflow import MlflowClient

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(root / 'mlflow.db').resolve()}"
    os.environ.update({URI_ENV: uri, EXPERIMENT_ENV: experiment})
    mlflow.set_tracking_uri(uri)
    with mlflow_errors("opening the local store"):
        client = MlflowClient(uri)
        if client.get_experiment_by_name(experiment) is None:
            client.create_experiment(experiment, artifact_location=(root / "mlartifacts").resolve().as_uri())
    return uri


def logged_runs() -> set[str]:
    """The dlx run ids (tag dlx.run_id) already in the current experiment."""
    from mlflow import MlflowClient

    with mlflow_errors("listing the runs"):
        client = MlflowClient()
        experiment = client.get_experiment_by_name(os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT)
        if experiment is None:
            return set()
        found, token = set(), None
        while True:
            page = client.search_runs([experiment.experiment_id], max_results=1000, page_token=token)
            found |= {run.data.tags["dlx.run_id"] for run in page if "dlx.run_id" in run.data.tags}
            token = page.token
            if not token:
                return found


def log_sweep(topic: str, dataset: str, rows: list[dict], model_dirs: list[Path], best_dir: Path,
              run_name: str = "") -> str:
    """The sweep as a parent run (strategy, swept names) with one child run per trial (its
    parameters, per-epoch figures and validation figure); names the parent in ``best_dir``."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from components.files import write_json

    with mlflow_errors("logging the sweep"):
        client = MlflowClient()
        experiment = mlflow.set_experiment(os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT)
        tags = run_tags({"topic": topic, "dataset": dataset}, {"dlx.kind": "sweep"})
        parent = client.create_run(experiment.experiment_id, run_name=run_name or f"sweep-{topic}", tags=tags)
        parent_id = parent.info.run_id
        for row, model_dir in zip(rows, model_dirs):
            child = client.create_run(experiment.experiment_id, run_name=f"trial-{row['trial']}",
                                      tags={**tags, "dlx.kind": "trial", MLFLOW_PARENT_RUN_ID: parent_id})
            client.log_batch(child.info.run_id, params=_params(row["params"]))
            _log_history(client, child.info.run_id, read_json(model_dir / "history.json"))
            _log_figures(client, child.info.run_id, {"validation": row["validation"]})
            client.set_terminated(child.info.run_id)
    write_json(best_dir / PARENT_FILE, {"run_id": parent_id})
    return parent_id
