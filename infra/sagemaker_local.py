"""`dlx sagemaker train TOPIC --local`: the SageMaker SDK's own local mode, to try a job here first.

ModelTrainer in ``Mode.LOCAL_CONTAINER`` lays out /opt/ml as SageMaker does (the hyperparameters,
resourceconfig.json, the data channel) and starts the image through docker compose and the Docker
API, which can be Podman's. The model comes back as model.tar.gz and is unpacked into runs/, as
`dlx sagemaker fetch` unpacks a job's. Local mode leaves out three things a job has, which dlx adds:

- a checkpoint folder: a second channel, named to the entrypoint by DLX_CHECKPOINT_DIR, kept under
  the runs folder per job (same topic, data and parameters), so a rerun resumes after the last
  finished epoch, as a managed spot job resumes from S3;
- model and output folders the image's non-root user may write (created first, open to it);
- a trustworthy outcome: docker compose does not always see the container's exit status, so the
  outcome is read from what the entrypoint leaves, output/failure or the model's metrics.json.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from components.errors import DlxError
from components.files import atomic_dir
from components.image import CHECKPOINT_ENV

if TYPE_CHECKING:
    from infra.sagemaker import JobSpec

CHECKPOINT_CHANNEL = "checkpoints"


def compose_command() -> list[str]:
    """docker compose v2, else docker-compose: what the SDK's local mode runs; else one line saying so.

    The SDK asks `docker compose version` first and fails without a `docker` command at all, so one
    is needed beside docker-compose (Docker's CLI, or Podman's `podman-docker`)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose") and docker:
        return ["docker-compose"]
    if shutil.which("docker-compose"):
        raise DlxError("SageMaker's local mode runs `docker compose version` first and needs a docker command; "
                       "install Docker's CLI, or podman-docker with Podman")
    raise DlxError("SageMaker's local mode needs docker compose (v2) or docker-compose; install one "
                   "(`apt-get install docker-compose`), with the Docker API it talks to (Docker, or Podman's service)")


def checkpoint_dir(root: Path, spec: JobSpec) -> Path:
    """The job's checkpoint folder under the runs folder, the same for the same topic, data and parameters."""
    from infra.sagemaker import hyperparameters

    key = hashlib.sha256(json.dumps(hyperparameters(spec), sort_keys=True).encode()).hexdigest()[:12]
    return root / ".sagemaker-local" / f"{spec.job.topic.name}-{key}" / "checkpoints"


def train_locally(spec: JobSpec, runs_root: Path, *, checkpoints: Path | None = None) -> Path:
    """Run the job in the SDK's local mode; unpack its model into runs/ and return that run directory."""
    from sagemaker.core.training.configs import Compute, InputData
    from sagemaker.train import ModelTrainer
    from sagemaker.train.model_trainer import Mode

    from infra.sagemaker import hyperparameters, job_name

    compose_command()
    name = job_name(f"local-{spec.job.topic.name}")
    checkpoints = checkpoints or checkpoint_dir(runs_root, spec)
    with tempfile.TemporaryDirectory(prefix="dlx-sagemaker-local-") as work:
        root = Path(work)
        for folder in (root / "model", root / "algo-1" / "output" / "data", checkpoints):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o777)  # the image's user (uid 1000) writes here, whoever runs this
        channels = [InputData(channel_name=CHECKPOINT_CHANNEL, data_source=str(checkpoints.resolve()))]
        if spec.job.data_dir:
            if "://" in spec.job.data_dir or not Path(spec.job.data_dir).is_dir():
                raise DlxError(f"--data-dir {spec.job.data_dir}: local mode reads a folder on this machine; "
                               "pass the folder holding the data set's files")
            channels.append(InputData(channel_name="data", data_source=str(Path(spec.job.data_dir).resolve())))
        trainer = ModelTrainer(
            training_mode=Mode.LOCAL_CONTAINER, training_image=spec.image, local_container_root=str(root),
            compute=Compute(instance_type=spec.instance_type if spec.instance_type.startswith("local")
                            else "local_cpu", instance_count=1),
            hyperparameters=hyperparameters(spec), base_job_name=name, input_data_config=channels,
            environment={CHECKPOINT_ENV: f"/opt/ml/input/data/{CHECKPOINT_CHANNEL}"},
        )
        print(f"local mode: {spec.image} as training job {name}; checkpoints in {checkpoints}", flush=True)
        try:
            trainer.train(wait=True, logs=True)
        except RuntimeError as exc:  # the SDK's own words when compose saw the failure
            failure = _failure(root)
            raise DlxError(failure or f"the local training container failed ({' '.join(str(exc).split())[:200]})") \
                from None
        return _unpack(root, runs_root / f"sagemaker-{name}")


def _failure(root: Path) -> str | None:
    """What the entrypoint wrote to output/failure, from the output archive local mode leaves."""
    archive = root / "compressed_artifacts" / "output.tar.gz"
    if not archive.is_file():
        return None
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if Path(member.name).name == "failure" and member.isfile():
                return tar.extractfile(member).read().decode("utf-8", "replace").strip()
    return None


def _unpack(root: Path, run_dir: Path) -> Path:
    """The model archive into ``run_dir``; a job that left no metrics.json stopped early, whatever compose said."""
    archive = root / "compressed_artifacts" / "model.tar.gz"
    failure = _failure(root)
    if failure:
        raise DlxError(failure)
    if not archive.is_file() or "metrics.json" not in _names(archive):
        raise DlxError("the local training job stopped before it finished (no metrics.json in its model); run the "
                       "same command again to resume after its last finished epoch")
    with atomic_dir(run_dir) as out, tarfile.open(archive) as tar:
        tar.extractall(out, filter="data")
    os.utime(run_dir)
    return run_dir


def _names(archive: Path) -> set[str]:
    with tarfile.open(archive) as tar:
        return {str(Path(name)) for name in tar.getnames()}
