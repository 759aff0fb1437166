"""The project's container image: what every Kubeflow step and SageMaker job runs (containers/)."""

DEFAULT_IMAGE = "ghcr.io/dlx-project/dlx:0.1.0"
"""The name the project publishes its CPU image under; build and push your own (containers/README.md)."""

CHECKPOINT_ENV = "DLX_CHECKPOINT_DIR"
"""Where the image's training entrypoint keeps its checkpoints when not in /opt/ml/checkpoints
(SageMaker's local mode has no checkpoint sync, so dlx mounts a folder as a channel and names it here)."""

METRIC_REGEX = r"dlx-metric {name}=([-+0-9.eE]+)"
"""How a job's log carries a figure (the entrypoint prints ``dlx-metric NAME=VALUE``): the regular
expression of a SageMaker metric definition, with the metric's name put in."""


def unpublished_warning(image: str) -> str | None:
    """A one-line warning when ``image`` is the default name, which no registry serves: a cluster or a
    job would fail to pull it."""
    if image != DEFAULT_IMAGE:
        return None
    return (f"dlx: warning: {image} is the project's default image name and no registry serves it; build and push "
            "your own (make image IMAGE=REGISTRY/dlx:TAG, then docker push; containers/README.md) and pass --image")
