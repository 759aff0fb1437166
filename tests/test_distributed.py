"""Data-parallel training of the PyTorch topics under torchrun, on the CPU with gloo: two processes
with the same global batch and seed train the model one process trains, and resume across world sizes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components import distributed, steps
from components.errors import DlxError
from components.files import read_json
from components.params import to_dict
from components.registry import get_topic

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5
"""Relative difference allowed between 1- and 2-process figures: the same sums, added in another order."""


def params(topic: str, dataset: str, **changes) -> str:
    return json.dumps(to_dict(get_topic(topic).params_for(dataset)) | changes)


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ratings") / "dataset"
    steps.prepare("synthetic-ratings", "", 0, path)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "dataset"
    steps.prepare("builtin-corpus", "", 0, path)
    return path


@pytest.fixture(scope="module")
def sine(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sine") / "dataset"
    steps.prepare("sine", "", 0, path)
    return path


def train(topic: str, dataset_dir: Path, params_json: str, model_dir: Path, processes: int, monkeypatch,
          checkpoint_dir: Path | None = None) -> dict:
    monkeypatch.setenv(distributed.NPROC_ENV, str(processes))
    steps.train(topic, params_json, 0, dataset_dir, model_dir, checkpoint_dir)
    return read_json(model_dir / "history.json")


def assert_close(one: dict, two: dict) -> None:
    assert one.keys() == two.keys()
    for name in one:
        for a, b in zip(one[name], two[name], strict=True):
            assert abs(a - b) <= TOLERANCE * max(abs(a), 1e-3), (name, a, b)


@pytest.mark.parametrize("topic,data,changes", [
    ("cf-regularized", "ratings", {}), ("cf-gd", "ratings", {}),
    # The default hand-written ReLU cell explodes in its first epoch and clipping tames it: a path that
    # amplifies rounding, so the check takes the LSTM, whose training is not chaotic.
    ("rnn", "sine", {"cell": "lstm"}),
    # Dropout included: text-gen draws its masks per stream, so a slice of the streams gets the same ones.
    ("text-gen", "corpus", {}),
])
def test_two_processes_train_what_one_trains(topic, data, changes, request, tmp_path, monkeypatch):
    dataset_dir = request.getfixturevalue(data)
    dataset = read_json(dataset_dir / "meta.json")["dataset"]
    job = params(topic, dataset, epochs=3, **changes)
    one = train(topic, dataset_dir, job, tmp_path / "one", 1, monkeypatch)
    two = train(topic, dataset_dir, job, tmp_path / "two", 2, monkeypatch)
    assert_close(one, two)
    assert read_json(tmp_path / "two" / "train.json")["processes"] == 2
    assert read_json(tmp_path / "one" / "train.json")["processes"] == 1
    assert not list(tmp_path.glob("*/model/")), "only rank 0 writes, and where the step asked"


def test_a_run_stopped_with_two_processes_resumes_with_one(sine, tmp_path, monkeypatch):
    job = params("rnn", "sine", epochs=8, cell="lstm")
    straight = train("rnn", sine, job, tmp_path / "straight", 1, monkeypatch)
    checkpoints = tmp_path / "checkpoints"
    command = [sys.executable, "-c", "import sys; from components import steps; "
               "steps.train('rnn', sys.argv[1], 0, sys.argv[2], sys.argv[3], sys.argv[4])",
               job, str(sine), str(tmp_path / "stopped"), str(checkpoints)]
    env = {**os.environ, distributed.NPROC_ENV: "2"}
    with subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as job_process:
        while job_process.poll() is None and not (checkpoints / "state.pt").is_file():
            time.sleep(0.01)
        os.killpg(job_process.pid, signal.SIGKILL)
    done = len(read_json(checkpoints / "epochs.json")["elapsed"])
    assert 1 <= done < 8 and not (tmp_path / "stopped").exists()

    resumed = train("rnn", sine, job, tmp_path / "resumed", 1, monkeypatch, checkpoints)
    assert_close(straight, resumed)


def test_a_topic_that_is_not_pytorch_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv(distributed.NPROC_ENV, "2")
    with pytest.raises(DlxError, match="mnist-mlp is a keras topic and trains in one process"):
        steps.train("mnist-mlp", params("mnist-mlp", "digits"), 0, tmp_path, tmp_path / "model")


def test_shards_cover_a_batch_once():
    import numpy as np
    import torch

    from components.topics.ratings.factors import Split

    split = Split(torch.arange(10), torch.arange(10) * 2, torch.ones(10))
    parts = []
    for rank in range(3):
        os.environ.update(RANK=str(rank), WORLD_SIZE="3")
        try:
            lo, hi = distributed.share(10)
        finally:
            del os.environ["RANK"], os.environ["WORLD_SIZE"]
        part = distributed.shard(split, 10, lo, hi)
        assert torch.equal(part.items, part.users * 2)
        parts.append(part.users)
        assert distributed.shard(np.arange(10), 10, lo, hi).tolist() == part.users.tolist()
        assert distributed.shard(0.5, 10, lo, hi) == 0.5
    assert torch.cat(parts).tolist() == list(range(10))


def _sagemaker_root(root: Path, host: str | None, hosts: list[str]) -> Path:
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(
        {"topic": "cf-regularized", "epochs": "3"}))
    if host is not None:
        (root / "input" / "config" / "resourceconfig.json").write_text(json.dumps(
            {"current_host": host, "hosts": hosts, "network_interface_name": "lo"}))
    return root


def test_two_sagemaker_hosts_rendezvous_and_train_what_one_host_trains(tmp_path):
    """Two entrypoint processes, each told by resourceconfig.json that it is one of two hosts (both
    names resolve to this machine), start torchrun across them over loopback."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hosts = ["127.0.0.1", "localhost"]  # sorted: the first is where the rendezvous listens
    command = [sys.executable, "-m", "containers.entrypoint", "train"]
    env = {**os.environ, "DLX_MASTER_PORT": str(port)}
    env.pop(distributed.NPROC_ENV, None)
    jobs = [subprocess.Popen(command, cwd=ROOT, env={**env, "DLX_SM_ROOT": str(_sagemaker_root(tmp_path / h, h, hosts))},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for h in hosts]
    outputs = [job.communicate(timeout=240)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    assert "training with 2 processes (2 machines x 1), torchrun" in outputs[0]
    assert "host 1 finished its share of training" in outputs[1]
    assert not (tmp_path / "localhost" / "model" / "metrics.json").exists()
    two_hosts = read_json(tmp_path / "127.0.0.1" / "model" / "metrics.json")

    single = subprocess.run(command, cwd=ROOT, env={**env, "DLX_SM_ROOT": str(_sagemaker_root(tmp_path / "one", None, []))},
                            capture_output=True, text=True)
    assert single.returncode == 0, single.stdout + single.stderr
    one_host = read_json(tmp_path / "one" / "model" / "metrics.json")
    assert read_json(tmp_path / "127.0.0.1" / "model" / "model" / "train.json")["processes"] == 2
    for name, value in one_host["test"].items():
        assert abs(two_hosts["test"][name] - value) <= TOLERANCE * abs(value), name


def test_kubeflow_gpus_run_one_process_each_for_pytorch_and_mirror_for_keras(tmp_path):
    import yaml

    from pipelines.build import build_pipeline
    from pipelines.compile import compile_topic
    from pipelines.deployment import Deployment

    def train_env(topic: str) -> dict:
        spec = yaml.safe_load(compile_topic(get_topic(topic), tmp_path, Deployment(gpus=2)).read_text())
        container = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
        assert container["resources"]["accelerator"]["resourceCount"] == "2"
        return {item["name"]: item["value"] for item in container.get("env", [])}

    assert train_env("cf-regularized")[distributed.NPROC_ENV] == "2"
    assert distributed.NPROC_ENV not in train_env("mnist-cnn")  # one process: MirroredStrategy over both GPUs
    with pytest.raises(DlxError, match="text-vectors is a scikit-learn topic and uses no GPU"):
        build_pipeline(get_topic("text-vectors"), Deployment(gpus=2))


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from components.topics import keras_fit
keras_fit.replica_devices = lambda: [d.name for d in tf.config.list_logical_devices("CPU")]  # two CPUs for two GPUs
from components import steps
summary = steps.train("mnist-mlp", sys.argv[1], 0, sys.argv[2], sys.argv[3])
import keras
model = keras.saving.load_model(sys.argv[3] + "/model.keras")
print(json.dumps({"replicas": summary["replicas"], "val_accuracy": summary["val_accuracy"]}))
"""


def test_keras_mirrors_its_model_on_two_devices(tmp_path):
    """MirroredStrategy on the CPU split into two logical devices, as it runs on two GPUs."""
    steps.prepare("digits", "", 0, tmp_path / "digits")
    job = params("mnist-mlp", "digits", epochs=5)
    run = subprocess.run([sys.executable, "-c", MIRRORED, job, str(tmp_path / "digits"), str(tmp_path / "model")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "mirrored on 2 devices" in run.stdout
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["val_accuracy"] > 0.9
    metrics = steps.evaluate("mnist-mlp", tmp_path / "digits", tmp_path / "model", tmp_path / "evaluation")
    assert metrics["test"]["accuracy"] > metrics["baseline"]["random_forest"]["accuracy"] - 0.02
