"""Hyperparameter sweeps: the search space, the compiled pipeline, and a local sweep end to end."""
from __future__ import annotations

import json

import pytest
import yaml

from components import sweep
from components.errors import DlxError
from components.files import read_json
from components.registry import get_topic
from dlx.cli import main

CF = get_topic("cf-regularized")


def test_axes_are_values_or_ranges():
    assert sweep.parse_axis("factors=3,5,8") == sweep.Axis("factors", values=("3", "5", "8"))
    assert sweep.parse_axis("learning_rate=1e-4:1e-2:log") == sweep.Axis("learning_rate", low=1e-4, high=1e-2, log=True)
    for bad, message in [("factors", "write it as NAME=VALUE"), ("lr=1:2:ln", "NAME=LO:HI:log"),
                         ("lr=2:1", "LO < HI"), ("lr=0:1:log", "LO > 0"), ("lr=a:b", "must be numbers")]:
        with pytest.raises(DlxError, match=message):
            sweep.parse_axis(bad)


def test_grid_takes_every_combination_and_ranges_give_evenly_spaced_points():
    axes = [sweep.parse_axis("factors=3,5"), sweep.parse_axis("learning_rate=0.001:0.1:log")]
    trials = sweep.trials(CF, "synthetic-ratings", axes, "grid", 3, 0, ["epochs=4"])
    assert len(trials) == 6
    assert sorted({t["params"]["learning_rate"] for t in trials}) == [0.001, 0.01, 0.1]
    assert {t["params"]["factors"] for t in trials} == {3, 5} and {t["params"]["epochs"] for t in trials} == {4}
    assert trials[0]["swept"] == {"factors": 3, "learning_rate": 0.001}


def test_random_draws_repeat_with_the_seed_and_respect_types_and_bounds():
    axes = [sweep.parse_axis("factors=2:20"), sweep.parse_axis("learning_rate=1e-4:1e-1:log")]
    first = sweep.trials(CF, "synthetic-ratings", axes, "random", 8, 3)
    assert first == sweep.trials(CF, "synthetic-ratings", axes, "random", 8, 3)
    assert first != sweep.trials(CF, "synthetic-ratings", axes, "random", 8, 4)
    assert all(isinstance(t["params"]["factors"], int) and 2 <= t["params"]["factors"] <= 20 for t in first)
    assert all(1e-4 <= t["params"]["learning_rate"] <= 1e-1 for t in first)


@pytest.mark.parametrize("topic, axis, message", [
    ("cf-regularized", "factorz=1,2", "unknown parameter 'factorz' for cf-regularized; valid parameters: "),
    ("cf-regularized", "optimizer=0:1", "optimizer is not a number; sweep it over values"),
    ("cf-regularized", "factors=x,y", "bad value 'x' for parameter factors"),
    ("text-vectors", "C=0.1,1", "scored by cross-validation"),
])
def test_bad_spaces_are_one_line(topic, axis, message):
    with pytest.raises(DlxError, match=message):
        sweep.trials(get_topic(topic), get_topic(topic).default_dataset, [sweep.parse_axis(axis)], "grid", 3, 0)


def test_the_sweep_compiles_to_a_parallel_for_with_a_choice_before_the_test(tmp_path):
    from kfp import compiler

    from pipelines.sweep import build_sweep

    compiler.Compiler().compile(build_sweep(CF, 2), str(tmp_path / "sweep.yaml"))
    spec = yaml.safe_load((tmp_path / "sweep.yaml").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"prepare", "for-loop-1", "choose", "evaluate"}
    loop = tasks["for-loop-1"]
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--trials"
    assert loop["iteratorPolicy"]["parallelismLimit"] == 2
    assert spec["root"]["inputDefinitions"]["parameters"]["trials"]["parameterType"] == "LIST"
    assert tasks["evaluate"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"]["producerTask"] == "choose"
    assert "for-loop-1" in tasks["choose"]["dependentTasks"]


def test_a_local_sweep_trains_each_trial_chooses_on_validation_and_tests_the_best(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["sweep", "cf-regularized", "--param", "factors=1,5", "--fix", "epochs=4", "--fix", "refit=false",
                 "--parallel", "2", "--runs-dir", str(runs)])
    assert code == 0
    (sweep_dir,) = runs.glob("sweep-cf-regularized-*")
    table = read_json(sweep_dir / "choose" / "trials" / "trials.json")
    assert table["metric"] == "val_rmse" and table["swept"] == ["factors"] and len(table["trials"]) == 2
    figures = [row["validation"] for row in table["trials"]]
    assert table["best"] == figures.index(min(figures))
    assert (sweep_dir / "choose" / "trials" / "sweep.png").stat().st_size > 0
    metrics = read_json(sweep_dir / "metrics.json")
    best = table["trials"][table["best"]]["params"]
    assert metrics["params"]["factors"] == best["factors"] and metrics["sweep"]["trials"] == 2
    assert metrics["test"]["rmse"] < metrics["baseline"]["bias"]["rmse"]
    out = capsys.readouterr().out
    assert f"best trial {table['best']} (factors={best['factors']})" in out and "| trial | factors | val_rmse |" in out
    assert main(["runs", "--json", "--runs-dir", str(runs)]) == 0
    assert [run["id"] for run in json.loads(capsys.readouterr().out)] == [sweep_dir.name]


def test_a_sweep_on_a_cluster_is_one_run_of_the_sweep_pipeline(capsys, tmp_path, monkeypatch):
    from fake_kfp import FakeKfp

    monkeypatch.setenv("DLX_CONFIG", str(tmp_path / "none.toml"))
    with FakeKfp() as server:
        assert main(["sweep", "cf-regularized", "--param", "factors=2,4,8", "--parallel", "3", "--host", server.url,
                     "--image", "registry.example/dlx:1"]) == 0
        (run,) = server.calls("POST", "/apis/v2beta1/runs")
        spec = server.versions[run.body["pipeline_version_reference"]["pipeline_version_id"]]["spec"]
        assert [p["display_name"] for p in server.pipelines.values()] == ["dlx-sweep-cf-regularized"]
    assert spec["pipelineInfo"]["name"] == "dlx-sweep-cf-regularized"
    assert spec["root"]["dag"]["tasks"]["for-loop-1"]["iteratorPolicy"]["parallelismLimit"] == 3
    parameters = run.body["runtime_config"]["parameters"]
    assert [json.loads(trial)["factors"] for trial in parameters["trials"]] == [2, 4, 8]
    assert "params_json" not in parameters and parameters["dataset"] == "synthetic-ratings"
    assert "submitted the sweep of cf-regularized (3 trials, 3 at a time)" in capsys.readouterr().out
