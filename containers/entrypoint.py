"""SageMaker's training contract for the dlx image: ``python -m containers.entrypoint train``.

SageMaker starts a training container as ``docker run IMAGE train`` and lays the job out under
/opt/ml: the hyperparameters in input/config/hyperparameters.json (every value a string), each
input channel's files in input/data/<channel>/, model/ uploaded as model.tar.gz when the job
succeeds, checkpoints/ kept in sync with S3 (managed spot training resumes from it), and
output/failure, whose text becomes the job's FailureReason. ``DLX_SM_ROOT`` moves that root,
for tests and local trials. The work is the same three steps a Kubeflow run does
(components.steps); the layout of the files is the whole contract, no SM_* variables are read.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from components import steps
from components.data import get_dataset
from components.distributed import MASTER_ENV, NODE_RANK_ENV, NODES_ENV, NPROC_ENV, check_parallel
from components.errors import DlxError
from components.evaluate import verdict
from components.files import atomic_dir, write_json
from components.image import CHECKPOINT_ENV
from components.job import ARGUMENTS, Job
from components.registry import Topic, get_topic

ROOT_ENV = "DLX_SM_ROOT"
DEFAULT_ROOT = "/opt/ml"
CHANNEL = "data"
"""The input channel holding a data set's files (absent for bundled data sets)."""
SAGEMAKER_PREFIXES = ("_tuning", "sagemaker_")
"""Hyperparameters SageMaker adds itself (the tuning objective, framework settings)."""
PORT_ENV = "DLX_MASTER_PORT"
"""The rendezvous port on the first host (default 29500, torchrun's)."""
HYPERPARAMETERS = ("topic", *(name for name in ARGUMENTS if name != "data_dir"))
"""The topic and the job's fields (the data comes in the data channel); the topic's parameters
come beside them, each by its name."""


@dataclass(frozen=True)
class Layout:
    """Where SageMaker puts a training job's inputs and collects its outputs."""

    root: Path

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def channel(self) -> Path:
        return self.root / "input" / "data" / CHANNEL

    @property
    def model(self) -> Path:
        """SageMaker's model dir, uploaded as model.tar.gz: model/, evaluation/ and metrics.json."""
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        """SageMaker syncs /opt/ml/checkpoints with S3; its local mode has none, so dlx mounts a folder
        and names it in DLX_CHECKPOINT_DIR (infra/sagemaker_local.py)."""
        return Path(os.environ.get(CHECKPOINT_ENV) or self.root / "checkpoints")

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def resources(self) -> Path:
        """The hosts of the job and which one this is (resourceconfig.json, written by SageMaker)."""
        return self.root / "input" / "config" / "resourceconfig.json"


def cluster(layout: Layout) -> tuple[int, int, str]:
    """(hosts, this host's index, rank 0's host) from resourceconfig.json; (1, 0, "") without it.

    SageMaker names the hosts algo-1..algo-N and resolves the names in the job's network, so the
    first one (sorted, as SageMaker's own launchers do) is where torchrun's rendezvous listens."""
    if not layout.resources.is_file():
        return 1, 0, ""
    config = json.loads(layout.resources.read_text())
    hosts = sorted(config["hosts"])
    return len(hosts), hosts.index(config["current_host"]), hosts[0]


def distribute(layout: Layout, topic: Topic) -> int:
    """Set the train step's process layout from the job's resources (components.distributed):
    one process per GPU of this host (one on a CPU host), torchrun across the hosts. Returns this
    host's index: only host 0 evaluates and writes the model."""
    hosts, index, first = cluster(layout)
    gpus = _gpus()
    if hosts == 1 and (gpus <= 1 or topic.framework != "pytorch"):  # one process, on all it is given
        return 0
    check_parallel(topic.name, topic.framework)
    port = os.environ.get(PORT_ENV, "29500")
    os.environ.update({NPROC_ENV: str(max(gpus, 1)), NODES_ENV: str(hosts), NODE_RANK_ENV: str(index),
                       MASTER_ENV: f"{first}:{port}"})
    return index


def _gpus() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count()


def read_job(layout: Layout) -> Job:
    """The job's hyperparameters (components.job's arguments, every value a string), checked before any work.

    The topic's parameters come by name (``learning_rate`` = ``"0.01"``); one left out keeps its
    default (a tuning job sends the fixed ones and its own choices); keys SageMaker itself adds
    (``_tuning_*``, ``sagemaker_*``) are ignored."""
    path = layout.hyperparameters
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise DlxError(f"{path} is missing; start the job with hyperparameters (at least topic)") from None
    except ValueError as exc:
        raise DlxError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(values, dict):
        raise DlxError(f"{path} must hold a JSON object of hyperparameters, like {{\"topic\": \"mnist-mlp\"}}")
    values = {k: v for k, v in values.items() if not k.startswith(SAGEMAKER_PREFIXES)}
    if "topic" not in values:
        raise DlxError("hyperparameter topic is missing; set it to a topic id (see `dlx list`)")
    topic = get_topic(values.pop("topic"))
    dataset = topic.check_dataset(values.get("dataset") or None)
    return Job.from_arguments(topic.name, values, "hyperparameter", data_dir=_data_dir(layout, dataset))


def _data_dir(layout: Layout, dataset: str) -> str:
    if not get_dataset(dataset).needs_location:
        return ""
    if not layout.channel.is_dir():
        raise DlxError(f"data set {dataset} needs its files in the '{CHANNEL}' input channel, but {layout.channel} "
                       f"does not exist; launch the job with a channel named {CHANNEL}")
    return str(layout.channel)


def _prepare_outputs(layout: Layout) -> None:
    """Drop what an earlier run in the same root left, and fail now, not after training, if unwritable."""
    layout.failure.unlink(missing_ok=True)
    for name in ("model", "evaluation"):
        shutil.rmtree(layout.model / name, ignore_errors=True)
    (layout.model / "metrics.json").unlink(missing_ok=True)
    for directory in (layout.model, layout.checkpoints):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            writable = os.access(directory, os.W_OK)
        except PermissionError:
            writable = False
        if not writable:
            raise DlxError(f"{directory} is not writable by this container's user (uid {os.getuid()}); "
                           "build the image with --build-arg RUN_AS=0 (see containers/README.md)")


def _step(number: int, text: str) -> float:
    print(f"dlx [{number}/3] {text}", flush=True)
    return time.perf_counter()


def run(layout: Layout) -> dict:
    """Prepare, train (resuming from the checkpoints) and evaluate; return the metrics."""
    started = time.perf_counter()
    job = read_job(layout)
    host = distribute(layout, job.topic)
    _prepare_outputs(layout)
    model_dir = layout.model / "model"
    with tempfile.TemporaryDirectory(prefix="dlx-") as scratch:
        dataset_dir = Path(scratch) / "dataset"
        since = _step(1, f"prepare {job.dataset}" + (f" from {job.data_dir}" if job.data_dir else ""))
        meta = steps.prepare(job.dataset, job.data_dir, job.seed, dataset_dir, job.arguments(params=False)["dataset_options"])
        sizes = " / ".join(f"{n} {split}" for split, n in meta["splits"].items())
        print(f"prepared {sizes} examples in {time.perf_counter() - since:.1f} s", flush=True)
        _step(2, f"train {job.topic.name} (seed {job.seed}, checkpoints in {layout.checkpoints})")
        steps.train(job.topic.name, job.params_json(), job.seed, dataset_dir, model_dir,
                    layout.checkpoints)
        main = job.topic.for_dataset(job.dataset).main_metric
        history = model_dir / "history.json"
        figures = json.loads(history.read_text()) if history.is_file() else {}
        if f"val_{main}" in figures:
            _metric_line(f"val_{main}", figures[f"val_{main}"][-1])
        if host:  # another host holds the model; this one's work is done
            print(f"dlx: host {host} finished its share of training; the first host evaluates", flush=True)
            return {}
        since = _step(3, "evaluate on the test split")
        with atomic_dir(layout.model / "evaluation") as evaluation:
            metrics = steps.evaluate(job.topic.name, dataset_dir, model_dir, evaluation)
        print(f"evaluated in {time.perf_counter() - since:.1f} s", flush=True)
        _metric_line(f"test_{main}", metrics["test"][main])
    metrics["wall_seconds"] = round(time.perf_counter() - started, 2)
    write_json(layout.model / "metrics.json", metrics)
    return metrics


def _metric_line(name: str, value: float) -> None:
    """``dlx-metric NAME=VALUE``: what the jobs' metric definitions read from the log
    (components.image.METRIC_REGEX),
    the tuning objective among them; one form for every topic, whatever its epoch lines say."""
    print(f"dlx-metric {name}={value:.6g}", flush=True)


def summary(topic: Topic, metrics: dict) -> str:
    """One line: the main test metric against the best baseline, and the time it took."""
    line = f"{topic.name} on {metrics['dataset']}: {verdict(metrics, topic)}"
    return line + f"; training {metrics['train_seconds']:.1f} s, whole job {metrics['wall_seconds']:.1f} s"


def _fail(layout: Layout, reason: str) -> None:
    """Tell SageMaker why (output/failure becomes the job's FailureReason)."""
    try:
        layout.failure.parent.mkdir(parents=True, exist_ok=True)
        layout.failure.write_text(reason + "\n")
    except OSError as exc:
        print(f"dlx: could not write {layout.failure}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["train"]:
        print("usage: python -m containers.entrypoint train  (SageMaker passes `train`; the image serves no "
              "endpoint, and Kubeflow runs its own command)", file=sys.stderr)
        return 2
    layout = Layout(Path(os.environ.get(ROOT_ENV, DEFAULT_ROOT)))
    try:
        metrics = run(layout)
    except DlxError as exc:
        print(f"dlx: error: {exc}", file=sys.stderr)
        _fail(layout, str(exc))
        return 2
    except Exception as exc:
        traceback.print_exc()
        _fail(layout, f"{type(exc).__name__}: {exc}")
        return 1
    if metrics:
        print(summary(get_topic(metrics["topic"]), metrics), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
