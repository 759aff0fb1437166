"""Promotion through the MLflow model registry: the champion is a registered model's alias.

With tracking on (components.tracking) and a champion asked for, the evaluated run's model is
registered as a new version of ``dlx-<topic>`` (or the name given), and the promotion rule of
components.promotion (same test split by fingerprint, the champion re-scored when the split
changed, a win only by more than the margin) decides whether the ``champion`` alias moves to it.
Each version carries the figures the rule needs as tags (topic, metric, value, test fingerprint)
and the decision's reason; a losing version stays registered, unaliased, with its reason. A name
already used by a model that is not this topic's is refused before anything is registered.
"""
from __future__ import annotations

from pathlib import Path

from components.errors import DlxError
from components.promotion import decide
from components.registry import Topic
from components.tracking import mlflow_errors

ALIAS = "champion"
TOPIC_TAG = "dlx.topic"
REGISTRY_PREFIX = "models:/"
"""--champion models:/NAME: promote through the registry (models:/ alone: dlx-<topic>)."""


def registered_name(topic: Topic, name: str = "") -> str:
    return name or f"dlx-{topic.name}"


def _record(client, name: str) -> dict | None:
    """The champion version as a promotion record, or None when the alias points nowhere."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, ALIAS)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    tags = version.tags
    return {"topic": tags.get(TOPIC_TAG), "metric": tags.get("dlx.metric"), "value": float(tags["dlx.value"]),
            "test_fingerprint": tags.get("dlx.test_fingerprint"), "model_uri": f"models:/{name}/{version.version}",
            "version": version.version}


def _fetch(uri: str, dest: Path) -> Path:
    import mlflow

    dest.mkdir(parents=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))


def _claim(client, name: str, topic: Topic) -> None:
    """Create the registered model for ``topic``, or check that the existing one is its."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, tags={TOPIC_TAG: topic.name},
                                       description=f"dlx {topic.name}: {topic.description}")
        return
    owner = model.tags.get(TOPIC_TAG)
    if owner != topic.name:
        raise DlxError(f"registered model {name} holds {owner or 'models not made by dlx'}, not {topic.name}; "
                       f"pass another --registered-model name")


def promote_registered(topic: Topic, metrics: dict, dataset_dir: str | Path, run_id: str, *, margin: float,
                       name: str = "") -> dict:
    """Register the run's model as a version and move the alias to it when it wins; the decision."""
    from mlflow import MlflowClient

    name = registered_name(topic, name)
    where = f"models:/{name}@{ALIAS}"
    with mlflow_errors(f"promoting through {name}"):
        client = MlflowClient()
        _claim(client, name, topic)
        record = _record(client, name)
        decision = decide(topic, metrics, dataset_dir, record, margin=margin, fingerprint=metrics["test_fingerprint"],
                          where=where, fetch=_fetch)
        source = client.get_run(run_id).info.artifact_uri + "/model"
        version = client.create_model_version(name, source, run_id=run_id, tags={
            TOPIC_TAG: topic.name, "dlx.metric": topic.main_metric, "dlx.value": str(decision["new"]),
            "dlx.test_fingerprint": metrics["test_fingerprint"], "dlx.promoted": "false",
            "dlx.reason": decision["reason"][:5000]})
        if decision["promoted"]:  # the alias moves first: a version tagged promoted is the champion
            client.set_registered_model_alias(name, ALIAS, version.version)
            client.set_model_version_tag(name, version.version, "dlx.promoted", "true")
    return {**decision, "registered_model": name, "version": version.version,
            "previous_version": record["version"] if record else None}
