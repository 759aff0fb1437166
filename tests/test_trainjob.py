"""`--nodes M`: the train step as a Kubeflow Trainer TrainJob, checked against a fake Kubernetes API
that runs the job's nodes as processes rendezvousing over loopback."""
import json

import pytest
import yaml
from fake_kubernetes import FakeKubernetes
from kubernetes.client import Configuration

from components import steps, trainjob
from components.errors import DlxError
from components.files import read_json
from components.job import Job
from components.registry import get_topic
from dlx.cli import main


@pytest.fixture
def kube(monkeypatch):
    monkeypatch.setattr(trainjob, "POLL_SECONDS", 1)
    fake = FakeKubernetes(env={"OMP_NUM_THREADS": "1"})
    yield fake
    fake.close()


def _config(fake: FakeKubernetes) -> Configuration:
    config = Configuration()
    config.host = fake.host
    return config


def test_the_pipeline_hands_training_to_a_trainjob_step(tmp_path):
    assert main(["compile", "cf-regularized", "--nodes", "2", "--gpus", "1", "-o", str(tmp_path),
                 "--image", "registry.example/dlx:1"]) == 0
    spec = yaml.safe_load((tmp_path / "dlx-cf-regularized.yaml").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"prepare", "train-nodes", "evaluate"}
    inputs = tasks["train-nodes"]["inputs"]["parameters"]
    constants = {name: value["runtimeValue"]["constant"] for name, value in inputs.items() if "runtimeValue" in value}
    topic = get_topic("cf-regularized")
    assert {k: constants[k] for k in ("nodes", "gpus", "image", "cpu", "memory")} == {
        "nodes": 2, "gpus": 1, "image": "registry.example/dlx:1", "cpu": topic.cpu, "memory": topic.memory}
    assert tasks["evaluate"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]["producerTask"] == "train-nodes"
    waiter = spec["deploymentSpec"]["executors"]["exec-train-nodes"]["container"]
    assert "resources" not in waiter  # the waiting pod asks for nothing; the TrainJob's nodes get the GPUs


def test_keras_and_sklearn_topics_refuse_nodes(tmp_path, capsys):
    assert main(["compile", "mnist-cnn", "--nodes", "2", "-o", str(tmp_path)]) == 2
    assert "is a keras topic and trains in one process" in capsys.readouterr().err


def test_two_nodes_train_the_model_the_step_hands_on(kube, tmp_path):
    job = Job.create("cf-regularized", "synthetic-ratings", params=["epochs=2"])
    dataset, shared_model, model = tmp_path / "dataset", tmp_path / "artifacts" / "model", tmp_path / "model"
    steps.prepare(job.dataset, "", 0, dataset, "{}")
    summary = trainjob.run(image="registry.example/dlx:1", topic=job.topic.name, params_json=job.params_json(),
                           seed=0, nodes=2, gpus=0, dataset_uri=str(dataset), model_uri=str(shared_model),
                           model_dir=model, cpu="2", memory="4Gi", namespace="team-a",
                           client_configuration=_config(kube))
    [(path, body)] = kube.posted()
    assert path == "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team-a/trainjobs"
    assert (body["apiVersion"], body["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert body["spec"]["runtimeRef"] == {"name": "torch-distributed", "kind": "ClusterTrainingRuntime"}
    trainer = body["spec"]["trainer"]
    assert (trainer["image"], trainer["numNodes"]) == ("registry.example/dlx:1", 2)
    assert trainer["command"] == ["python", "-m", "components.trainjob"]
    assert trainer["args"] == ["cf-regularized", job.params_json(), "0", str(dataset), str(shared_model)]
    assert trainer["resourcesPerNode"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    assert {"name": "DLX_NPROC", "value": "1"} in trainer["env"]
    assert body["metadata"]["labels"]["dlx/topic"] == "cf-regularized"

    logs = kube.logs[body["metadata"]["name"]]
    assert "training with 2 processes (2 machines x 1)" in logs[0]
    assert summary["processes"] == 2 and (model / "model.pt").is_file()
    assert read_json(model / "train.json") == summary
    assert json.loads((model / "params.json").read_text())["epochs"] == 2


def test_a_failed_trainjob_is_one_line(kube, tmp_path):
    job = Job.create("cf-regularized", "synthetic-ratings", params=["epochs=1"])
    with pytest.raises(DlxError, match=r"TrainJob \w+ failed; see its pods' logs") as error:
        trainjob.run(image="i", topic=job.topic.name, params_json=job.params_json(), seed=0, nodes=2, gpus=0,
                     dataset_uri=str(tmp_path / "missing"), model_uri=str(tmp_path / "model"),
                     model_dir=tmp_path / "out", cpu="1", memory="1Gi", namespace="team-a",
                     client_configuration=_config(kube))
    assert "\n" not in str(error.value)
    [logs] = kube.logs.values()
    assert all("no such artifact" in log for log in logs)  # each node said why in one line


def test_artifacts_the_nodes_cannot_reach_are_refused_before_any_call(kube, tmp_path):
    with pytest.raises(DlxError, match="give the Kubeflow Pipelines deployment an s3:// pipeline root"):
        trainjob.run(image="i", topic="cf-regularized", params_json="{}", seed=0, nodes=2, gpus=0,
                     dataset_uri="minio://mlpipeline/v2/artifacts/x", model_uri="minio://mlpipeline/y",
                     model_dir=tmp_path, cpu="1", memory="1Gi", client_configuration=_config(kube))
    assert kube.requests == []
