"""Compile topic pipelines to the YAML (IR) a Kubeflow Pipelines server accepts."""
from __future__ import annotations

from pathlib import Path

from kfp import compiler

from components.image import DEFAULT_IMAGE
from components.registry import Topic
from pipelines.build import build_pipeline


def compile_topic(topic: Topic, out_dir: Path, image: str = DEFAULT_IMAGE, gpus: int = 0) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"dlx-{topic.name}.yaml"
    tmp = path.with_name(f".{path.stem}.partial.yaml")  # kfp insists on the .yaml suffix
    compiler.Compiler().compile(build_pipeline(topic, image, gpus), str(tmp))
    tmp.replace(path)
    return path
