"""How a pipeline's steps are deployed on a cluster: image, GPUs, nodes, and the Kubernetes settings
a team's cluster asks for (kfp-kubernetes writes them into the compiled spec's platform section).

- every step: ``environment`` (variables), ``secret_env`` (a Secret's keys as variables of the
  same names: AWS credentials where there is no IRSA), ``pull_secrets`` (image pull Secrets);
- the train step: ``node_selector`` and ``tolerations`` (GPU node pools are labelled and
  tainted), ``retries`` (a preempted pod is retried) and ``checkpoint_pvc`` (a PersistentVolumeClaim
  mounted at CHECKPOINT_MOUNT, where the train step keeps its checkpoints under the run's id, so a
  retried pod resumes after the last finished epoch), or ``checkpoint_dir`` (a folder the step
  sees as it is, where it keeps its checkpoints: a local run's own, so that `dlx resume` continues it).

Tolerations are written as kubectl writes taints: ``KEY[=VALUE]:EFFECT`` (``nvidia.com/gpu:NoSchedule``,
``pool=gpu:NoExecute``), or ``KEY`` alone to tolerate every effect of that key.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.errors import DlxError
from components.image import DEFAULT_IMAGE

CHECKPOINT_MOUNT = "/dlx-checkpoints"
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?(/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_SECRET = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


@dataclass(frozen=True)
class Toleration:
    key: str
    value: str = ""
    effect: str = ""


@dataclass(frozen=True)
class Deployment:
    image: str = DEFAULT_IMAGE
    gpus: int = 0
    nodes: int = 1
    environment: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    secret_env: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pull_secrets: tuple[str, ...] = ()
    retries: int = 0
    checkpoint_pvc: str = ""
    checkpoint_dir: str = ""

    def __post_init__(self) -> None:
        for flag, value, least in (("--gpus", self.gpus, 0), ("--nodes", self.nodes, 1), ("--retries", self.retries, 0)):
            if value < least:
                raise DlxError(f"{flag} must be at least {least}, got {value}")
        for name in (*self.pull_secrets, *self.secret_env, *([self.checkpoint_pvc] if self.checkpoint_pvc else [])):
            if not _SECRET.fullmatch(name):
                raise DlxError(f"'{name}' is not a Kubernetes object name (lower-case letters, digits, '-' and '.')")
        if self.checkpoint_pvc and self.nodes > 1:
            raise DlxError("--checkpoint-pvc keeps one pod's checkpoints; a --nodes TrainJob starts over when retried, "
                           "so drop one of them")


def parse_toleration(text: str) -> Toleration:
    """``KEY[=VALUE][:EFFECT]``, one line naming the problem otherwise."""
    taint, _, effect = text.partition(":")
    key, _, value = taint.partition("=")
    if not key or not _NAME.fullmatch(key) or (value and not _NAME.fullmatch(value)) or \
            (effect and effect not in EFFECTS):
        raise DlxError(f"bad toleration '{text}': write KEY[=VALUE][:EFFECT] as kubectl writes taints, effect one of "
                       f"{', '.join(EFFECTS)} (e.g. nvidia.com/gpu:NoSchedule)")
    return Toleration(key, value, effect)


def parse_labels(items: Iterable[str], flag: str) -> dict[str, str]:
    """``KEY=VALUE`` items (node selector labels)."""
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not _NAME.fullmatch(key) or (value and not _NAME.fullmatch(value)):
            raise DlxError(f"bad {flag} '{item}': write KEY=VALUE with Kubernetes label syntax, "
                           "e.g. node.kubernetes.io/instance-type=g5.xlarge")
        labels[key] = value
    return labels


def parse_secret_env(items: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``SECRET=KEY[,KEY...]`` items: each key of the Secret becomes the variable of that name."""
    secrets = {}
    for item in items:
        name, sep, keys = item.partition("=")
        chosen = tuple(k.strip() for k in keys.split(",") if k.strip())
        if not sep or not chosen or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) for k in chosen):
            raise DlxError(f"bad --secret-env '{item}': write SECRET=KEY[,KEY...], e.g. "
                           "aws-credentials=AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY")
        secrets[name] = chosen
    return secrets


def apply_to_step(task: Any, deployment: Deployment) -> None:
    """What every step gets: variables, Secrets as variables, image pull Secrets."""
    from kfp import kubernetes

    for name, value in deployment.environment.items():
        task.set_env_variable(name, value)
    for secret, keys in deployment.secret_env.items():
        kubernetes.use_secret_as_env(task, secret_name=secret, secret_key_to_env={key: key for key in keys})
    if deployment.pull_secrets:
        kubernetes.set_image_pull_secrets(task, list(deployment.pull_secrets))


def apply_to_train(task: Any, deployment: Deployment) -> None:
    """The train step's placement (node selector, tolerations), retries and checkpoint volume."""
    from kfp import kubernetes

    for key, value in deployment.node_selector.items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for toleration in deployment.tolerations:
        kubernetes.add_toleration(task, key=toleration.key, operator="Equal" if toleration.value else "Exists",
                                  value=toleration.value or None, effect=toleration.effect or None)
    if deployment.retries:
        task.set_retry(num_retries=deployment.retries, backoff_duration="60s", backoff_factor=2)
    if deployment.checkpoint_pvc:
        kubernetes.mount_pvc(task, pvc_name=deployment.checkpoint_pvc, mount_path=CHECKPOINT_MOUNT)
