"""The suite: every chosen topic's pipeline in one, ending in a leaderboard; compiled, run through
kfp.local, and submitted to a fake Kubeflow Pipelines server."""
import json

import pytest
import yaml
from fake_kfp import FakeKfp

from components import leaderboard
from components.errors import DlxError
from components.files import read_json
from components.registry import get_topic, topics
from dlx.cli import main
from test_kubeflow import RECURRING, RUNS, _no_user_settings, _one_line_error, _spec  # noqa: F401


def _row(topic: str, beats: bool | None, promoted: bool | None) -> dict:
    verdict = {"metric": "accuracy", "label": "test accuracy", "value": 0.9, "text": f"{topic} verdict <b>"}
    if beats is not None:
        verdict |= {"beats": beats, "baseline": "majority", "baseline_value": 0.5}
    metrics = {"topic": topic, "dataset": "digits", "verdict": verdict, "train_seconds": 1.5, "run_id": "r1"}
    if promoted is not None:
        metrics["promotion"] = {"promoted": promoted, "reason": "because"}
    return leaderboard.row(metrics)


def test_the_board_counts_orders_and_escapes(tmp_path):
    rows = [_row("zeta", True, False), _row("alpha", False, None), _row("mid", None, True)]
    board = leaderboard.write(rows, tmp_path)
    assert [r["topic"] for r in board["rows"]] == ["alpha", "mid", "zeta"]
    assert (board["topics"], board["beat_baseline"], board["promoted"]) == (3, 1, 1)
    assert read_json(tmp_path / "leaderboard.json") == board
    page = (tmp_path / "leaderboard.html").read_text()
    assert "1 of 3 topics beat their baseline; 1 promoted" in page
    assert "does NOT beat" in page and "no baseline to beat" in page and "kept champion: because" in page
    assert "verdict &lt;b&gt;" in page and "verdict <b>" not in page
    with pytest.raises(DlxError, match="no topics"):
        leaderboard.summary([])


def test_a_champion_folder_holds_one_record_per_topic():
    assert leaderboard.champion_for("s3://b/champions/", "rnn") == "s3://b/champions/rnn.json"
    assert leaderboard.champion_for("champions/mine.json", "rnn") == "champions/mine.json"
    assert leaderboard.champion_for("", "rnn") == ""


def test_compile_suite_nests_each_topic_with_its_own_resources_and_ends_in_the_summary(tmp_path, capsys):
    argv = ["compile", "suite", "--topics", "pytorch-gd,text-vectors", "--gpus", "1", "-o", str(tmp_path),
            "--image", "registry.example/dlx:test"]
    assert main(argv) == 0
    assert "suite (pytorch-gd, text-vectors)" in capsys.readouterr().out
    spec = yaml.safe_load((tmp_path / "dlx-suite.yaml").read_text())
    assert spec["pipelineInfo"]["name"] == "dlx-suite"
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"dlx-pytorch-gd", "dlx-text-vectors", "summarize"}
    assert sorted(tasks["summarize"]["dependentTasks"]) == ["dlx-pytorch-gd", "dlx-text-vectors"]
    rows = tasks["summarize"]["inputs"]["parameters"]["rows_json"]["runtimeValue"]["constant"]
    assert rows.startswith("[{{$.inputs.parameters[") and rows.count("pipelinechannel--dlx-") == 2
    assert set(spec["root"]["inputDefinitions"]["parameters"]) == {"seed", "champion", "margin"}
    for member in ("dlx-pytorch-gd", "dlx-text-vectors"):  # the suite's parameters reach each topic's pipeline
        assert tasks[member]["inputs"]["parameters"]["champion"] == {"componentInputParameter": "champion"}
        inner = spec["components"][tasks[member]["componentRef"]["name"]]["dag"]["tasks"]
        assert set(inner) == {"prepare", "train", "evaluate"}

    # Each topic's train step requests its own CPU and memory; only the PyTorch one gets the GPU.
    trains = {name: executor["container"] for name, executor in spec["deploymentSpec"]["executors"].items()
              if name.startswith("exec-train")}
    assert len(trains) == 2
    gpus = sorted(c["resources"].get("accelerator", {}).get("resourceCount", "0") for c in trains.values())
    assert gpus == ["0", "1"]
    topic = get_topic("pytorch-gd")
    assert {(c["resources"]["resourceCpuRequest"], c["resources"]["resourceMemoryRequest"])
            for c in trains.values()} == {(topic.cpu, topic.memory)}
    assert spec["components"]["comp-summarize"]["outputDefinitions"]["artifacts"]["board"]["artifactType"][
        "schemaTitle"] == "system.HTML"


def test_compile_suite_without_topics_takes_every_topic(tmp_path):
    assert main(["compile", "suite", "-o", str(tmp_path)]) == 0
    tasks = yaml.safe_load((tmp_path / "dlx-suite.yaml").read_text())["root"]["dag"]["tasks"]
    assert set(tasks) == {f"dlx-{name}" for name in topics()} | {"summarize"}


def test_run_suite_trains_each_topic_writes_the_leaderboard_and_promotes_per_topic(tmp_path, capsys):
    champions = tmp_path / "champions"
    first, second = tmp_path / "first", tmp_path / "second"
    argv = ["run", "suite", "--topics", "pytorch-gd,text-vectors", "--champion", str(champions)]
    assert main([*argv, "--out", str(first)]) == 0
    out = capsys.readouterr().out
    for shown in ("pytorch-gd train", "text-vectors evaluate", "suite summarize", "2 of 2 topics beat their baseline",
                  "2 promoted", "promoted: no champion yet"):
        assert shown in out, shown

    board = read_json(first / "leaderboard.json")
    assert [(r["topic"], r["dataset"], r["beats"], r["promoted"]) for r in board["rows"]] == [
        ("pytorch-gd", "regression", True, True), ("text-vectors", "text-sample", True, True)]
    for topic in ("pytorch-gd", "text-vectors"):
        metrics = read_json(first / topic / "metrics.json")
        assert metrics["run_id"] == f"first/{topic}" and metrics["topic"] == topic
        assert (first / topic / "report.html").is_file() and (first / topic / "train" / "model").is_dir()
        assert read_json(champions / f"{topic}.json")["value"] == metrics["test"][metrics["verdict"]["metric"]]
    assert "pytorch-gd" in (first / "leaderboard.html").read_text()
    assert (first / "summarize" / "board.html").is_file() and (first / "pipeline.log").is_file()
    assert not (first / "kfp").exists() and not (first / "tmp").exists()

    # The same seed again: every topic ties its champion, so none is replaced.
    assert main([*argv, "--out", str(second)]) == 0
    assert "0 promoted" in capsys.readouterr().out
    assert [r["promoted"] for r in read_json(second / "leaderboard.json")["rows"]] == [False, False]


@pytest.mark.parametrize("argv, message", [
    (["run", "mnist-mlp", "--topics", "rnn"], "--topics chooses the topics of suite"),
    (["run", "suite", "--topics", "rnn,rnn"], "names rnn more than once"),
    (["run", "suite", "--topics", "rnn,nope"], "unknown topic 'nope'"),
    (["run", "suite", "--topics", ","], "names no topic"),
    (["run", "suite", "--param", "epochs=1"], "--param cannot go with suite"),
    (["run", "suite", "--runner", "docker"], "--runner docker cannot go with a local suite run"),
    (["run", "suite", "--champion", "models:/mine"], "pass --champion models:/"),
    (["compile", "all", "--topics", "rnn"], "--topics chooses the topics of suite"),
    (["submit", "suite", "--dataset", "mnist", "--host", "http://127.0.0.1:9"], "--dataset cannot go with suite"),
])
def test_bad_suite_requests_are_one_line(argv, message, tmp_path, capsys):
    assert main([*argv, *(["-o", str(tmp_path)] if argv[0] == "compile" else [])]) == 2
    assert message in _one_line_error(capsys)


def test_submit_and_schedule_the_suite_as_one_named_pipeline(capsys):
    with FakeKfp() as server:
        assert main(["submit", "suite", "--topics", "rnn,mnist-mlp", "--host", server.url, "--seed", "3",
                     "--champion", "s3://models/champions", "--margin", "0.01"]) == 0
        assert main(["schedule", "create", "suite", "--topics", "rnn,mnist-mlp", "--host", server.url,
                     "--cron", "@weekly"]) == 0
        (run,) = server.calls("POST", RUNS)
        (recurring,) = server.calls("POST", RECURRING)
        names = [p["display_name"] for p in server.pipelines.values()]
        spec = _spec(server, run.body)
        recurring_spec = _spec(server, recurring.body)
    assert names == ["dlx-suite"] and spec == recurring_spec  # one pipeline, one version for the same spec
    assert set(spec["root"]["dag"]["tasks"]) == {"dlx-rnn", "dlx-mnist-mlp", "summarize"}
    # The champion location becomes a folder: each topic promotes against its own record in it.
    assert run.body["runtime_config"]["parameters"] == {"seed": 3, "champion": "s3://models/champions/",
                                                        "margin": 0.01}
    assert run.body["display_name"].startswith("dlx-suite-") and recurring.body["display_name"] == "dlx-suite"
    assert json.dumps(recurring.body["runtime_config"]["parameters"]) == '{"seed": 0, "champion": "", "margin": 0.0}'
    assert "submitted suite" in capsys.readouterr().out
