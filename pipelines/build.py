"""One Kubeflow pipeline per topic, all the same shape: prepare → train → evaluate.

Resources: the train task requests the topic's ``cpu`` and ``memory`` (components.registry) and,
with ``gpus``, that many ``nvidia.com/gpu``; prepare and evaluate take the cluster's defaults.
With several GPUs a PyTorch topic's train step runs one process per GPU under torchrun
(components.distributed, through $DLX_NPROC) and a Keras topic mirrors its model on them
(MirroredStrategy); a scikit-learn topic has no use for them and is refused.

Caching on a cluster (kfp.local never caches unless asked, so local runs always rerun):

- prepare: off. It reads a location outside the pipeline (a directory, an s3:// prefix, a
  download) whose content may change between runs — scheduled retraining exists to pick up
  new data, which a cache hit would hide.
- train: on. KFP keys the cache on the image, the command, the parameters (topic, every topic
  parameter, seed) and the *identity* of the input dataset artifact, not its content. Since prepare reruns,
  each run hands train a new artifact, so a hit needs the same dataset artifact: in practice a
  run whose prepare was itself served from cache (``enable_caching=True`` at submission).
- evaluate: off. It compares the model with the current champion record, which changes over
  time, and it may rewrite that record; a cached result would skip both.

Parameters: the job's fields, the champion and margin, and every topic parameter by name with its
type and its default for the topic's default data set (a run form shows them so; `dlx submit`
sends each resolved for the chosen data set).

No `from __future__ import annotations`: kfp reads the pipeline's parameter annotations.
"""
import inspect
import json
import typing
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from kfp import dsl

from components.distributed import NPROC_ENV, check_parallel
from components.errors import DlxError
from components.ops import make_ops
from components.params import parameter_types, to_dict
from components.registry import Topic
from pipelines.deployment import CHECKPOINT_MOUNT, Deployment, apply_to_step, apply_to_train

GPU = "nvidia.com/gpu"
"""The Kubernetes resource name of NVIDIA's device plugin, which GPU node pools expose."""
GPU_FRAMEWORKS = ("pytorch", "keras")


def build_pipeline(topic: Topic, deployment: Deployment = Deployment()) -> Any:
    """The pipeline function for ``topic``; its arguments are what a run may change.

    ``champion`` is the URI of the champion record (local path or s3://, or models:/NAME for the
    MLflow registry; empty: no promotion) and ``margin`` how much better the new model must be to
    replace it (components.promotion). ``deployment`` (pipelines.deployment): the image, GPUs and
    Kubernetes settings; with ``nodes`` > 1 the train step creates a Kubeflow Trainer TrainJob of
    that many pods, each with the topic's CPU and memory and ``gpus`` GPUs (components.trainjob),
    and waits for it.
    """
    gpus, nodes = deployment.gpus, deployment.nodes
    if gpus > 1 and topic.framework not in GPU_FRAMEWORKS:
        raise DlxError(f"--gpus {gpus}: {topic.name} is a {topic.framework} topic and uses no GPU; "
                       "drop --gpus for it (PyTorch topics train one process per GPU, Keras topics mirror on them)")
    if nodes > 1:
        check_parallel(topic.name, topic.framework)
    ops = make_ops(deployment.image)
    defaults = topic.params_for(topic.default_dataset)

    def pipeline(dataset: str, dataset_options: str, data_dir: str, seed: int, champion: str, margin: float,
                 *params: Any):
        prepared = ops.prepare(dataset_name=dataset, data_dir=data_dir, seed=seed, dataset_options=dataset_options)
        prepared.set_caching_options(False)
        if nodes > 1:  # a waiter: the TrainJob's pods get the resources
            trained = ops.train_nodes(topic=topic.name, params_json=params_template(topic, params), seed=seed,
                                      nodes=nodes, gpus=gpus, image=deployment.image, cpu=topic.cpu,
                                      memory=topic.memory, dataset=prepared.outputs["dataset"])
            trained.set_caching_options(True)
        else:
            checkpoints = deployment.checkpoint_dir or (CHECKPOINT_MOUNT if deployment.checkpoint_pvc else "")
            trained = ops.train(topic=topic.name, params_json=params_template(topic, params), seed=seed,
                                dataset=prepared.outputs["dataset"], checkpoint_dir=checkpoints,
                                run_id="" if deployment.checkpoint_dir else dsl.PIPELINE_JOB_ID_PLACEHOLDER)
            trained.set_caching_options(True).set_cpu_request(topic.cpu).set_memory_request(topic.memory)
            if gpus:
                trained.set_accelerator_type(GPU).set_accelerator_limit(gpus)
            if gpus > 1 and topic.framework == "pytorch":
                trained.set_env_variable(NPROC_ENV, str(gpus))
        apply_to_train(trained, deployment)
        evaluated = ops.evaluate(
            topic=topic.name, dataset=prepared.outputs["dataset"], model=trained.outputs["model"],
            champion=champion, margin=margin, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        )
        evaluated.set_caching_options(False)
        for task in (prepared, trained, evaluated):
            apply_to_step(task, deployment)
        return evaluated.outputs["Output"]  # the leaderboard row (components.leaderboard), which a suite collects

    fixed = {"dataset": (str, topic.default_dataset), "dataset_options": (str, "{}"), "data_dir": (str, ""),
             "seed": (int, 0), "champion": (str, ""), "margin": (float, 0.0)}
    typed = {name: (_pipeline_type(tp), value) for (name, tp), value in
             zip(parameter_types(topic.params).items(), to_dict(defaults).values())}
    pipeline.__signature__ = inspect.Signature([
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=value, annotation=tp)
        for name, (tp, value) in {**fixed, **typed}.items()], return_annotation=str)
    return dsl.pipeline(name=f"dlx-{topic.name}", description=f"dlx {topic.name}: {topic.description}")(pipeline)


def fit_to(topic: Topic, deployment: Deployment) -> tuple[Deployment, list[str]]:
    """``deployment`` as it applies to ``topic`` among others (`compile all`, the suite): GPUs only
    for the topics that use them, several nodes only for PyTorch topics; with notes on what was dropped."""
    notes = []
    if deployment.gpus and topic.framework not in GPU_FRAMEWORKS:
        deployment, notes = replace(deployment, gpus=0), [f"no GPUs: a {topic.framework} topic"]
    if deployment.nodes > 1 and topic.framework != "pytorch":
        deployment, notes = replace(deployment, nodes=1), [*notes, "one pod: not a PyTorch topic"]
    return deployment, notes


def _pipeline_type(tp: Any) -> type:
    """A parameter's type as a pipeline parameter type: choices are strings, tuples lists."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return str
    return list if origin is tuple else tp


def params_template(topic: Topic, channels: Sequence[Any]) -> str:
    """The train step's params_json from the run's typed parameters: a JSON object whose values are
    the parameters' placeholders, which KFP fills in as text when the step starts (strings quoted)."""
    entries = []
    for (name, tp), channel in zip(parameter_types(topic.params).items(), channels):
        value = f'"{channel}"' if _pipeline_type(tp) is str else str(channel)
        entries.append(f"{json.dumps(name)}: {value}")
    return "{" + ", ".join(entries) + "}"
