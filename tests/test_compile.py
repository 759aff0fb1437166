"""`dlx compile` writes pipeline YAML a Kubeflow Pipelines server accepts: check its graph."""
import yaml

from dlx.cli import main


def test_compile_all_writes_one_three_step_pipeline_per_topic(tmp_path, capsys):
    assert main(["compile", "all", "-o", str(tmp_path), "--image", "registry.example/dlx:test"]) == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["dlx-mnist-cnn.yaml", "dlx-mnist-mlp.yaml"]

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
    assert set(parameters) == {"dataset", "data_dir", "params_json", "seed"}

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
    assert "cnn" in capsys.readouterr().out


def test_compile_unknown_topic_is_one_line_error(tmp_path, capsys):
    assert main(["compile", "nope", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "unknown topic 'nope'" in err
