"""The sweep pipeline: prepare once, train every trial (ParallelFor), choose on validation, test one.

The same shape on kfp.local and on a cluster: ``trials`` is a pipeline parameter (a list of each
trial's params_json), so one compiled sweep serves any search space; ``parallel`` caps how many
trials train at once. The choose step scores the collected models on the validation split only
(components.sweep); evaluate then sees the chosen model alone, so the test figure is an unbiased
estimate of the sweep's winner.

No `from __future__ import annotations`: kfp reads the pipeline's parameter annotations.
"""
from dataclasses import replace
from typing import Any, List

from kfp import dsl

from components.ops import make_ops
from components.registry import Topic
from pipelines.deployment import Deployment, apply_to_step, apply_to_train


def build_sweep(topic: Topic, parallel: int, deployment: Deployment = Deployment()) -> Any:
    """The sweep pipeline function for ``topic``, at most ``parallel`` trials training at once;
    ``deployment``'s image and Kubernetes settings as for a run (no GPUs, nodes or checkpoints)."""
    ops = make_ops(deployment.image)

    @dsl.pipeline(name=f"dlx-sweep-{topic.name}", description=f"dlx sweep of {topic.name}: {topic.description}")
    def sweep(
        trials: List[str],
        dataset: str = topic.default_dataset,
        dataset_options: str = "{}",
        data_dir: str = "",
        seed: int = 0,
    ):
        prepared = ops.prepare(dataset_name=dataset, data_dir=data_dir, seed=seed, dataset_options=dataset_options)
        prepared.set_caching_options(False)
        with dsl.ParallelFor(trials, parallelism=parallel) as trial:
            trained = ops.train(topic=topic.name, params_json=trial, seed=seed, dataset=prepared.outputs["dataset"])
            trained.set_cpu_request(topic.cpu).set_memory_request(topic.memory)
            apply_to_train(trained, replace(deployment, checkpoint_pvc=""))
        chosen = ops.choose(topic=topic.name, models=dsl.Collected(trained.outputs["model"]),
                            dataset=prepared.outputs["dataset"], run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
        evaluated = ops.evaluate(topic=topic.name, dataset=prepared.outputs["dataset"], model=chosen.outputs["best"],
                                 run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
        evaluated.set_caching_options(False)
        for task in (prepared, trained, chosen, evaluated):
            apply_to_step(task, deployment)

    return sweep
