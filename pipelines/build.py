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
- train: on. KFP keys the cache on the image, the command, the parameters (topic, params_json,
  seed) and the *identity* of the input dataset artifact, not its content. Since prepare reruns,
  each run hands train a new artifact, so a hit needs the same dataset artifact: in practice a
  run whose prepare was itself served from cache (``enable_caching=True`` at submission).
- evaluate: off. It compares the model with the current champion record, which changes over
  time, and it may rewrite that record; a cached result would skip both.

No `from __future__ import annotations`: kfp reads the pipeline's parameter annotations.
"""
from collections.abc import Mapping
from typing import Any

from kfp import dsl

from components.distributed import NPROC_ENV
from components.errors import DlxError
from components.image import DEFAULT_IMAGE
from components.ops import make_ops
from components.registry import Topic

GPU = "nvidia.com/gpu"
"""The Kubernetes resource name of NVIDIA's device plugin, which GPU node pools expose."""
GPU_FRAMEWORKS = ("pytorch", "keras")


def build_pipeline(topic: Topic, image: str = DEFAULT_IMAGE, gpus: int = 0,
                   environment: Mapping[str, str] | None = None) -> Any:
    """The pipeline function for ``topic``; its arguments are what a run may change.

    ``champion`` is the URI of the champion record (local path or s3://; empty: no promotion) and
    ``margin`` how much better the new model must be to replace it (components.promotion).
    ``environment``: variables every step's container gets (the local Docker runner's).
    """
    if gpus > 1 and topic.framework not in GPU_FRAMEWORKS:
        raise DlxError(f"--gpus {gpus}: {topic.name} is a {topic.framework} topic and uses no GPU; "
                       "drop --gpus for it (PyTorch topics train one process per GPU, Keras topics mirror on them)")
    ops = make_ops(image)

    @dsl.pipeline(name=f"dlx-{topic.name}", description=f"dlx {topic.name}: {topic.description}")
    def pipeline(
        dataset: str = topic.default_dataset,
        dataset_options: str = "{}",
        data_dir: str = "",
        params_json: str = "{}",
        seed: int = 0,
        champion: str = "",
        margin: float = 0.0,
    ):
        prepared = ops.prepare(dataset_name=dataset, data_dir=data_dir, seed=seed, dataset_options=dataset_options)
        prepared.set_caching_options(False)
        trained = ops.train(topic=topic.name, params_json=params_json, seed=seed, dataset=prepared.outputs["dataset"])
        trained.set_caching_options(True).set_cpu_request(topic.cpu).set_memory_request(topic.memory)
        if gpus:
            trained.set_accelerator_type(GPU).set_accelerator_limit(gpus)
        if gpus > 1 and topic.framework == "pytorch":
            trained.set_env_variable(NPROC_ENV, str(gpus))
        evaluated = ops.evaluate(
            topic=topic.name, dataset=prepared.outputs["dataset"], model=trained.outputs["model"],
            champion=champion, margin=margin, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        )
        evaluated.set_caching_options(False)
        for task in (prepared, trained, evaluated):
            for name, value in (environment or {}).items():
                task.set_env_variable(name, value)

    return pipeline
