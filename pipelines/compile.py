"""Compile topic pipelines, and the suite, to the YAML (IR) a Kubeflow Pipelines server accepts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kfp import compiler

from components.registry import Topic
from pipelines.build import build_pipeline
from pipelines.deployment import Deployment
from pipelines.suite import Suite, build_suite
from pipelines.sweep import build_sweep


def compile_topic(topic: Topic, out_dir: Path, deployment: Deployment = Deployment(),
                  sweep_parallel: int | None = None) -> Path:
    """The topic's pipeline as dlx-TOPIC.yaml, or with ``sweep_parallel`` its sweep (dlx-sweep-TOPIC.yaml)."""
    if sweep_parallel is None:
        return _write(build_pipeline(topic, deployment), out_dir / f"dlx-{topic.name}.yaml")
    return _write(build_sweep(topic, sweep_parallel, deployment), out_dir / f"dlx-sweep-{topic.name}.yaml")


def compile_suite(suite: Suite, out_dir: Path, deployment: Deployment = Deployment()) -> Path:
    """The suite's pipeline (pipelines.suite) as dlx-suite.yaml."""
    return _write(build_suite(suite, deployment), out_dir / f"dlx-{suite.name}.yaml")


def _write(pipeline: Any, path: Path) -> Path:
    """Compile next to ``path`` and rename, so a failed compile leaves no file that looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.yaml")  # kfp insists on the .yaml suffix
    try:
        compiler.Compiler().compile(pipeline, str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
