"""One Kubeflow pipeline per topic, all the same shape: prepare → train → evaluate.

No `from __future__ import annotations`: kfp reads the pipeline's parameter annotations.
"""
from typing import Any

from kfp import dsl

from components.ops import DEFAULT_IMAGE, make_ops
from components.registry import Topic


def build_pipeline(topic: Topic, image: str = DEFAULT_IMAGE) -> Any:
    """The pipeline function for ``topic``; its arguments are what a run may change."""
    ops = make_ops(image)

    @dsl.pipeline(name=f"dlx-{topic.name}", description=f"dlx {topic.name}: {topic.description}")
    def pipeline(
        dataset: str = topic.default_dataset,
        data_dir: str = "",
        params_json: str = "{}",
        seed: int = 0,
    ):
        prepared = ops.prepare(dataset_name=dataset, data_dir=data_dir, seed=seed)
        trained = ops.train(topic=topic.name, params_json=params_json, seed=seed, dataset=prepared.outputs["dataset"])
        ops.evaluate(topic=topic.name, dataset=prepared.outputs["dataset"], model=trained.outputs["model"])

    return pipeline
