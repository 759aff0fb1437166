"""Compile topic pipelines to the YAML (IR) a Kubeflow Pipelines server accepts."""
from __future__ import annotations

from pathlib import Path

from kfp import compiler

from components.registry import Topic
from pipelines.build import build_pipeline
from pipelines.deployment import Deployment
from pipelines.sweep import build_sweep


def compile_topic(topic: Topic, out_dir: Path, deployment: Deployment = Deployment(),
                  sweep_parallel: int | None = None) -> Path:
    """The topic's pipeline as dlx-TOPIC.yaml, or with ``sweep_parallel`` its sweep (dlx-sweep-TOPIC.yaml)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if sweep_parallel is None:
        path, pipeline = out_dir / f"dlx-{topic.name}.yaml", build_pipeline(topic, deployment)
    else:
        path, pipeline = out_dir / f"dlx-sweep-{topic.name}.yaml", build_sweep(topic, sweep_parallel, deployment)
    tmp = path.with_name(f".{path.stem}.partial.yaml")  # kfp insists on the .yaml suffix
    compiler.Compiler().compile(pipeline, str(tmp))
    tmp.replace(path)
    return path
