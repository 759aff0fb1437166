"""Settings for the remote run targets: flags beat environment variables beat dlx.toml.

dlx.toml (in the current directory, or the file named by $DLX_CONFIG) looks like:

    [aws]
    region = "eu-west-1"
    bucket = "my-dlx-bucket"
    role_arn = "arn:aws:iam::123456789012:role/dlx-sagemaker"
    image_uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/dlx:0.1.0"

    [kubeflow]
    host = "https://kubeflow.example.com/pipeline"
    experiment = "dlx"
    image = "ghcr.io/YOUR-ORG/dlx:0.1.0"                      # the image every step runs

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

_ENV = {
    "region": "DLX_AWS_REGION",
    "bucket": "DLX_BUCKET",
    "role_arn": "DLX_ROLE_ARN",
    "image_uri": "DLX_IMAGE_URI",
    "kfp_host": "DLX_KFP_HOST",
    "kfp_experiment": "DLX_KFP_EXPERIMENT",
    "kfp_token": "DLX_KFP_TOKEN",
    "kfp_image": "DLX_KFP_IMAGE",
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
    "workstation_source": ("workstation", "source"),
}


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
    workstation_source: str | None = None


def config_path() -> Path:
    return Path(os.environ.get("DLX_CONFIG", "dlx.toml"))


def load_settings(path: Path | None = None) -> Settings:
    """dlx.toml values overridden by the DLX_* environment variables (both optional)."""
    path = path or config_path()
    table: dict = {}
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise DlxError(f"{path}: not valid TOML ({exc}); fix or remove the file") from None
    values = {}
    for name, (section, key) in _TOML.items():
        value = os.environ.get(_ENV[name]) or table.get(section, {}).get(key)
        values[name] = str(value) if value is not None else None
    return Settings(**values)


def require(value: str | None, name: str, flag: str) -> str:
    """``value`` or a DlxError telling the three ways to provide setting ``name``."""
    if value:
        return value
    section, key = _TOML[name]
    raise DlxError(f"no {name.replace('_', ' ')} given: pass {flag}, set {_ENV[name]}, or put {key} under [{section}] in {config_path()}")
