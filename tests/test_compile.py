"""`dlx compile` writes pipeline YAML a Kubeflow Pipelines server accepts: check its graph."""
import yaml

from components.params import parameter_types
from components.registry import get_topic, topics
from dlx.cli import main


def test_compile_all_writes_one_three_step_pipeline_per_topic(tmp_path, capsys):
    assert main(["compile", "all", "-o", str(tmp_path), "--image", "registry.example/dlx:test"]) == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted(f"dlx-{name}.yaml" for name in topics())

    spec = yaml.safe_load((tmp_path / "dlx-mnist-cnn.yaml").read_text())
    assert spec["pipelineInfo"]["name"] == "dlx-mnist-cnn"
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"prepare", "train", "evaluate"}
    assert tasks["train"]["dependentTasks"] == ["prepare"]
    assert sorted(tasks["evaluate"]["dependentTasks"]) == ["prepare", "train"]
    assert tasks["train"]["inputs"]["artifacts"]["dataset"]["taskOutputArtifact"] == {
        "outputArtifactKey": "dataset", "producerTask": "prepare"}
    assert tasks["evaluate"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]["producerTask"] == "train"
    assert tasks["train"]["inputs"]["parameters"]["topic"]["runtimeValue"]["constant"] == "mnist-cnn"

    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters["dataset"]["defaultValue"] == "digits"
    names = set(parameter_types(get_topic("mnist-cnn").params))
    assert set(parameters) == {"dataset", "dataset_options", "data_dir", "seed", "champion", "margin", *names}
    assert (parameters["filters"]["parameterType"], parameters["filters"]["defaultValue"]) == ("LIST", [32, 64])
    # The train step's params_json is every typed parameter's placeholder, filled in when it starts.
    template = tasks["train"]["inputs"]["parameters"]["params_json"]["runtimeValue"]["constant"]
    assert "\"filters\": {{$.inputs.parameters['pipelinechannel--filters']}}" in template
    assert "\"optimizer\": \"{{$.inputs.parameters['pipelinechannel--optimizer']}}\"" in template
    assert (parameters["champion"]["defaultValue"], parameters["margin"]["defaultValue"]) == ("", 0.0)
    assert tasks["evaluate"]["inputs"]["parameters"]["champion"] == {"componentInputParameter": "champion"}

    # Only train is cached (prepare reads a location that may change; evaluate faces a moving champion).
    assert {name: task.get("cachingOptions", {}).get("enableCache", False) for name, task in tasks.items()} == {
        "prepare": False, "train": True, "evaluate": False}

    outputs = spec["components"]["comp-evaluate"]["outputDefinitions"]["artifacts"]
    assert outputs["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert outputs["classification"]["artifactType"]["schemaTitle"] == "system.ClassificationMetrics"
    assert outputs["report"]["artifactType"]["schemaTitle"] == "system.HTML"
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == 3
    for executor in executors.values():
        container = executor["container"]
        assert container["image"] == "registry.example/dlx:test"
        assert "pip install" not in " ".join(container["command"])
    # train requests the topic's CPU and memory; no GPU unless asked (dlx submit --gpus).
    resources = executors["exec-train"]["container"]["resources"]
    topic = get_topic("mnist-cnn")
    assert (resources["resourceCpuRequest"], resources["resourceMemoryRequest"]) == (topic.cpu, topic.memory)
    assert "accelerator" not in resources and "resources" not in executors["exec-evaluate"]["container"]
    assert "cnn" in capsys.readouterr().out


def test_compile_unknown_topic_is_one_line_error(tmp_path, capsys):
    assert main(["compile", "nope", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "unknown topic 'nope'" in err
