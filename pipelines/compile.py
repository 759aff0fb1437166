"""Compile topic pipelines to the YAML (IR) a Kubeflow Pipelines server accepts."""
from __future__ import annotations

from pathlib import Path

from kfp import compiler

from components.image import DEFAULT_IMAGE
from components.registry import Topic
from pipelines.build import build_pipeline
from pipelines.sweep import build_sweep


def compile_topic(topic: Topic, out_dir: Path, image: str = DEFAULT_IMAGE, gpus: int = 0,
                  sweep_parallel: int | None = None, nodes: int = 1) -> Path:
    """The topic's pipeline as dlx-TOPIC.yaml, or with ``sweep_parallel`` its sweep (dlx-sweep-TOPIC.yaml)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if sweep_parallel is None:
        path, pipeline = out_dir / f"dlx-{topic.name}.yaml", build_pipeline(topic, image, gpus, nodes=nodes)
    else:
        path, pipeline = out_dir / f"dlx-sweep-{topic.name}.yaml", build_sweep(topic, sweep_parallel, image)
    tmp = path.with_name(f".{path.stem}.partial.yaml")  # kfp insists on the .yaml suffix
    compiler.Compiler().compile(pipeline, str(tmp))
    tmp.replace(path)
    return path
