"""The project's container image: what every Kubeflow step and SageMaker job runs (containers/)."""

DEFAULT_IMAGE = "ghcr.io/dlx-project/dlx:0.1.0"
"""The name the project publishes its CPU image under; build and push your own (containers/README.md)."""
