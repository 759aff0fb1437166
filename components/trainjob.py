"""Multi-node training on Kubernetes: the train step as a Kubeflow Trainer TrainJob.

With ``dlx submit --nodes M`` the pipeline's train step does not train: it creates a TrainJob
(Kubeflow Trainer v2, through its SDK's TrainerClient) on the ``torch-distributed`` runtime with M
nodes of the project's image, waits for it, and fetches the model. Each node runs ``python -m
components.trainjob`` (``node_main``): it reads the rendezvous the runtime gives every node
($PET_NNODES, $PET_NODE_RANK, $PET_MASTER_ADDR, $PET_MASTER_PORT), fetches the prepared data set
from the step's input artifact, trains through components.distributed like any multi-host run
(one process per GPU of the node), and node 0 uploads the model where the step's output artifact
lives, for the step to hand on. Artifacts therefore travel through object storage: the pipeline
root must be an s3:// location (or a path every pod mounts). A retried TrainJob starts from its
first epoch: the nodes keep no checkpoint between attempts.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.distributed import MASTER_ENV, NODE_RANK_ENV, NODES_ENV, NPROC_ENV
from components.errors import DlxError
from components.files import read_json

RUNTIME = "torch-distributed"
"""The ClusterTrainingRuntime Kubeflow Trainer installs for PyTorch (torchrun across nodes)."""
NODE_COMMAND = ("python", "-m", "components.trainjob")
POLL_SECONDS = 10


def copy_tree(source: str, dest: Path) -> None:
    """``source`` (an s3:// prefix or a directory every node mounts) into the directory ``dest``."""
    from components.data.storage import download_prefix, is_s3_uri

    if is_s3_uri(source):
        download_prefix(source, dest)
    elif Path(source).is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
    else:
        raise DlxError(f"{source}: no such artifact; multi-node training needs the pipeline root in S3 "
                       "(or on a volume every pod mounts)")


def publish_tree(source: Path, dest: str) -> None:
    """The directory ``source`` to ``dest`` (an s3:// prefix or a shared directory)."""
    from components.data.storage import is_s3_uri, upload_dir

    if is_s3_uri(dest):
        upload_dir(source, dest)
    else:
        shutil.copytree(source, dest, dirs_exist_ok=True)


def check_location(uri: str) -> None:
    """Refuse an artifact location the TrainJob's pods cannot reach, before creating anything."""
    if "://" in uri and not uri.startswith("s3://"):
        raise DlxError(f"--nodes: the pipeline's artifacts are at {uri}, which the TrainJob's pods cannot read; "
                       "give the Kubeflow Pipelines deployment an s3:// pipeline root (or drop --nodes)")


def trainer_spec(*, image: str, topic: str, params_json: str, seed: int, nodes: int, gpus: int,
                 dataset_uri: str, model_uri: str, cpu: str, memory: str,
                 env: Mapping[str, str] | None = None) -> tuple[Any, list]:
    """The SDK's CustomTrainerContainer and options for the TrainJob: M nodes of ``image`` running
    ``node_main`` with the step's arguments, each with the train step's CPU, memory and GPUs."""
    from kubeflow.trainer import CustomTrainerContainer
    from kubeflow.trainer.options import Labels, TrainerArgs, TrainerCommand

    resources: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus:
        resources["gpu"] = gpus
    trainer = CustomTrainerContainer(image=image, num_nodes=nodes, resources_per_node=resources,
                                     env={**(env or {}), NPROC_ENV: str(max(gpus, 1))})
    options = [TrainerCommand(command=list(NODE_COMMAND)),
               TrainerArgs(args=[topic, params_json, str(seed), dataset_uri, model_uri]),
               Labels(labels={"app.kubernetes.io/part-of": "dlx", "dlx/topic": topic})]
    return trainer, options


def run(*, image: str, topic: str, params_json: str, seed: int, nodes: int, gpus: int, dataset_uri: str,
        model_uri: str, model_dir: Path, cpu: str, memory: str, namespace: str | None = None,
        client_configuration: Any = None, timeout: int = 7 * 24 * 3600) -> dict:
    """Create the TrainJob, wait for it to end, and fetch node 0's model into ``model_dir``; returns
    its training summary. ``client_configuration``: a kubernetes client Configuration (default: the
    pod's service account, or the local kubeconfig)."""
    from kubeflow.trainer import KubernetesBackendConfig, TrainerClient

    check_location(dataset_uri)
    check_location(model_uri)
    trainer, options = trainer_spec(image=image, topic=topic, params_json=params_json, seed=seed, nodes=nodes,
                                    gpus=gpus, dataset_uri=dataset_uri, model_uri=model_uri, cpu=cpu, memory=memory)
    client = TrainerClient(KubernetesBackendConfig(namespace=namespace, client_configuration=client_configuration))
    try:
        name = client.train(runtime=RUNTIME, trainer=trainer, options=options)
    except (RuntimeError, TimeoutError, ValueError) as exc:
        raise DlxError(f"could not create the TrainJob for {topic} ({_cause(exc)}); check that Kubeflow Trainer "
                       f"is installed with its {RUNTIME} runtime and that the pipeline's service account may "
                       "create trainjobs.trainer.kubeflow.org") from None
    print(f"TrainJob {name}: {nodes} nodes of {image}, {max(gpus, 1)} process(es) each", flush=True)
    try:
        job = client.wait_for_job_status(name, status={"Complete", "Failed"}, timeout=timeout,
                                         polling_interval=POLL_SECONDS)
    except (RuntimeError, TimeoutError) as exc:
        raise DlxError(f"lost track of TrainJob {name} ({_cause(exc)}); see `kubectl get trainjob {name}`") from None
    if job.status != "Complete":
        raise DlxError(f"TrainJob {name} failed; see its pods' logs (kubectl logs -l "
                       f"jobset.sigs.k8s.io/jobset-name={name})")
    copy_tree(model_uri, model_dir)
    return read_json(model_dir / "train.json")


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return " ".join(str(exc).split())[:300]


def node_main(argv: list[str] | None = None) -> int:
    """One node of the TrainJob: fetch the data set, train this node's share, node 0 publishes the model."""
    from components import steps

    parser = argparse.ArgumentParser(prog="python -m components.trainjob")
    for name in ("topic", "params_json", "seed", "dataset_uri", "model_uri"):
        parser.add_argument(name)
    args = parser.parse_args(argv)
    try:
        rank = os.environ.get("PET_NODE_RANK", "0")
        os.environ.update({NODES_ENV: os.environ.get("PET_NNODES", "1"), NODE_RANK_ENV: rank,
                           MASTER_ENV: f"{os.environ.get('PET_MASTER_ADDR', '127.0.0.1')}:"
                                       f"{os.environ.get('PET_MASTER_PORT', '29500')}"})
        with tempfile.TemporaryDirectory(prefix="dlx-node-") as scratch:
            dataset_dir, model_dir = Path(scratch) / "dataset", Path(scratch) / "model"
            copy_tree(args.dataset_uri, dataset_dir)
            steps.train(args.topic, args.params_json, int(args.seed), dataset_dir, model_dir)
            if rank == "0":
                publish_tree(model_dir, args.model_uri)
    except DlxError as exc:
        print(f"dlx: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(node_main())
