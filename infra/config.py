"""Settings for the remote run targets: flags beat environment variables beat dlx.toml.

dlx.toml (in the current directory, or the file named by $DLX_CONFIG) looks like:

    [aws]
    region = "eu-west-1"
    bucket = "my-dlx-bucket"
    role_arn = "arn:aws:iam::123456789012:role/dlx-sagemaker"
    image_uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dlx:0.1.0"

    [kubeflow]
    host = "https://kubeflow.example.com/pipeline"
    namespace = "team-a"                                      # the profile namespace (multi-user Kubeflow)
    experiment = "dlx"
    image = "ghcr.io/YOUR-ORG/dlx:0.1.0"                      # the image every step runs
    node_selector = { "nvidia.com/gpu.present" = "true" }    # the train step's (pipelines.deployment)
    tolerations = ["nvidia.com/gpu:NoSchedule"]
    secret_env = ["aws-credentials=AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY"]
    image_pull_secrets = ["regcred"]
    retries = 2
    checkpoint_pvc = "dlx-checkpoints"

    [mlflow]
    tracking_uri = "https://mlflow.example.com"               # every run is tracked there
    experiment = "dlx"

    [workstation]
    source = "dlx[train] @ git+https://github.com/YOUR-ORG/dlx.git@main"   # what the instance pip-installs

`dlx aws bootstrap` prints these values for the resources it creates.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from components.errors import DlxError

ENV_NAMES = {
    "region": "DLX_AWS_REGION",
    "bucket": "DLX_BUCKET",
    "role_arn": "DLX_ROLE_ARN",
    "image_uri": "DLX_IMAGE_URI",
    "kfp_host": "DLX_KFP_HOST",
    "kfp_experiment": "DLX_KFP_EXPERIMENT",
    "kfp_token": "DLX_KFP_TOKEN",
    "kfp_image": "DLX_KFP_IMAGE",
    "kfp_namespace": "DLX_KFP_NAMESPACE",
    "tracking_uri": "MLFLOW_TRACKING_URI",
    "tracking_experiment": "MLFLOW_EXPERIMENT_NAME",
    "workstation_source": "DLX_WORKSTATION_SOURCE",
}
_TOML = {
    "region": ("aws", "region"),
    "bucket": ("aws", "bucket"),
    "role_arn": ("aws", "role_arn"),
    "image_uri": ("aws", "image_uri"),
    "kfp_host": ("kubeflow", "host"),
    "kfp_experiment": ("kubeflow", "experiment"),
    "kfp_token": ("kubeflow", "token"),
    "kfp_image": ("kubeflow", "image"),
    "kfp_namespace": ("kubeflow", "namespace"),
    "tracking_uri": ("mlflow", "tracking_uri"),
    "tracking_experiment": ("mlflow", "experiment"),
    "workstation_source": ("workstation", "source"),
}
KUBERNETES = {"node_selector": dict, "tolerations": list, "secret_env": list, "image_pull_secrets": list,
              "retries": int, "checkpoint_pvc": str}
"""[kubeflow]'s Kubernetes settings (pipelines.deployment) and the TOML type each takes."""


@dataclass(frozen=True)
class Settings:
    region: str | None = None
    bucket: str | None = None
    role_arn: str | None = None
    image_uri: str | None = None
    kfp_host: str | None = None
    kfp_experiment: str | None = None
    kfp_token: str | None = None
    kfp_image: str | None = None
    kfp_namespace: str | None = None
    tracking_uri: str | None = None
    tracking_experiment: str | None = None
    workstation_source: str | None = None


def config_path() -> Path:
    return Path(os.environ.get("DLX_CONFIG", "dlx.toml"))


def _read(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DlxError(f"{path}: not valid TOML ({exc}); fix or remove the file") from None


def load_settings(path: Path | None = None) -> Settings:
    """dlx.toml values overridden by the DLX_* environment variables (both optional)."""
    table = _read(path or config_path())
    values = {}
    for name, (section, key) in _TOML.items():
        value = os.environ.get(ENV_NAMES[name]) or table.get(section, {}).get(key)
        values[name] = str(value) if value is not None else None
    return Settings(**values)


def kubernetes_settings(path: Path | None = None) -> dict:
    """[kubeflow]'s Kubernetes settings present in dlx.toml, each checked for its type."""
    path = path or config_path()
    table = _read(path).get("kubeflow", {})
    found = {}
    for key, kind in KUBERNETES.items():
        if key in table:
            if not isinstance(table[key], kind) or isinstance(table[key], bool):
                raise DlxError(f"{path}: [kubeflow] {key} must be a TOML {kind.__name__}, not {table[key]!r}")
            found[key] = table[key]
    return found


def require(value: str | None, name: str, flag: str) -> str:
    """``value`` or a DlxError telling the three ways to provide setting ``name``."""
    if value:
        return value
    section, key = _TOML[name]
    raise DlxError(f"no {name.replace('_', ' ')} given: pass {flag}, set {ENV_NAMES[name]}, or put {key} under [{section}] in {config_path()}")
