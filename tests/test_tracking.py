"""Tracked runs and registry promotion against a real MLflow tracking server on loopback (SQLite
backend, local artifact store), read back through MlflowClient."""
import logging
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from dlx.cli import main

mlflow = pytest.importorskip("mlflow")
from mlflow import MlflowClient  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("the MLflow server did not start")
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def tracked(server, monkeypatch, tmp_path):
    logging.getLogger("mlflow.tracking.request_header.registry").setLevel(logging.ERROR)  # as components.tracking
    monkeypatch.setenv("DLX_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", f"dlx-test-{tmp_path.name}")
    mlflow.set_tracking_uri(server)
    return MlflowClient(server)


def _runs(client: MlflowClient, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"]) if found else []


def _run(tmp_path, name: str, *extra: str) -> int:
    return main(["run", "cf-regularized", "--out", str(tmp_path / name), *extra])


def test_a_local_run_logs_parameters_curves_figures_tags_and_artifacts(tracked, tmp_path, capsys):
    assert _run(tmp_path, "one", "--param", "epochs=3", "--param", "factors=4") == 0
    [run] = _runs(tracked, f"dlx-test-{tmp_path.name}")
    assert run.info.run_name == "one" and run.info.status == "FINISHED"
    assert (run.data.params["epochs"], run.data.params["factors"], run.data.params["y_range"]) == ("3", "4", "0.0,5.5")
    assert [m.step for m in tracked.get_metric_history(run.info.run_id, "val_rmse")] == [1, 2, 3]
    metrics = run.data.metrics
    assert {"test_rmse", "test_mae", "baseline_global_mean_rmse", "baseline_bias_rmse"} <= set(metrics)
    tags = run.data.tags
    assert (tags["dlx.topic"], tags["dlx.dataset"], tags["dlx.target"]) == ("cf-regularized", "synthetic-ratings",
                                                                            "local")
    assert tags["dlx.test_fingerprint"].startswith("sha256:")
    artifacts = {a.path for a in tracked.list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/report.html" in artifacts and "evaluation/metrics.json" in artifacts
    assert "model/model.pt" in {a.path for a in tracked.list_artifacts(run.info.run_id, "model")}
    assert f"mlflow    run {run.info.run_id} at " in capsys.readouterr().out


def test_the_registry_alias_moves_on_a_win_and_stays_on_a_loss(tracked, tmp_path, capsys):
    name = f"dlx-cf-{tmp_path.name}"[:60]
    champion = ["--champion", f"models:/{name}", "--margin", "0.001"]
    assert _run(tmp_path, "weak", "--param", "epochs=1", *champion) == 0
    assert tracked.get_model_version_by_alias(name, "champion").version == "1"
    assert _run(tmp_path, "strong", *champion) == 0  # the preset's 15 epochs beat 1
    first, second = (tracked.get_model_version(name, str(v)) for v in (1, 2))
    assert tracked.get_model_version_by_alias(name, "champion").version == "2"
    assert second.tags["dlx.promoted"] == "true" and "beats the champion's" in second.tags["dlx.reason"]
    assert _run(tmp_path, "weak-again", "--param", "epochs=1", *champion) == 0
    third = tracked.get_model_version(name, "3")
    assert tracked.get_model_version_by_alias(name, "champion").version == "2"
    assert third.tags["dlx.promoted"] == "false" and "does not beat the champion's" in third.tags["dlx.reason"]
    runs = _runs(tracked, f"dlx-test-{tmp_path.name}")
    assert [r.data.metrics["promoted"] for r in runs] == [1.0, 1.0, 0.0]
    assert "champion  not promoted" in capsys.readouterr().out


def test_a_registered_name_held_by_another_topic_is_refused_before_registering(tracked, tmp_path, capsys):
    name = f"held-{tmp_path.name}"[:60]
    tracked.create_registered_model(name, tags={"dlx.topic": "mnist-cnn"})
    assert _run(tmp_path, "x", "--param", "epochs=1", "--champion", f"models:/{name}") == 2
    [err] = [line for line in capsys.readouterr().err.splitlines() if "dlx: error:" in line]
    assert f"registered model {name} holds mnist-cnn, not cf-regularized" in err
    assert tracked.search_model_versions(f"name='{name}'") == []


def test_a_sweep_is_a_parent_run_with_its_trials_as_children(tracked, tmp_path):
    assert main(["sweep", "cf-regularized", "--param", "factors=2,4", "--fix", "epochs=2",
                 "--out", str(tmp_path / "sweep")]) == 0
    runs = _runs(tracked, f"dlx-test-{tmp_path.name}")
    [parent] = [r for r in runs if r.data.tags.get("dlx.kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.data.params["factors"] for c in children) == ["2", "4"]
    assert all("validation" in c.data.metrics for c in children)
    assert "test_rmse" in parent.data.metrics and parent.data.params["factors"] in ("2", "4")


def test_an_unreachable_tracking_server_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DLX_CONFIG", str(tmp_path / "none.toml"))
    url = f"http://127.0.0.1:{_free_port()}"
    assert _run(tmp_path, "x", "--tracking-uri", url) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"MLflow tracking server {url} does not answer" in err
    assert not (tmp_path / "x").exists()


def test_the_registry_without_tracking_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DLX_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert _run(tmp_path, "x", "--champion", "models:/") == 2
    assert "promotes through the MLflow registry, which needs a tracking server" in capsys.readouterr().err


def test_without_a_tracking_uri_mlflow_is_never_imported(tmp_path):
    code = ("import os, sys; os.environ.pop('MLFLOW_TRACKING_URI', None)\n"
            "from dlx.cli import main\n"
            f"assert main(['run', 'pytorch-gd', '--out', {str(tmp_path / 'run')!r}]) == 0\n"
            "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**__import__("os").environ, "DLX_CONFIG": str(tmp_path / "none.toml")})
    assert done.returncode == 0, done.stderr[-2000:]


def test_dlx_ui_adds_the_local_runs_to_a_store_beside_them_and_serves_it_on_loopback(tmp_path, monkeypatch):
    from components import tracking
    from pipelines.runs import track_local_runs

    monkeypatch.setenv("DLX_CONFIG", str(tmp_path / "none.toml"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.setenv(name, "")
    root = tmp_path / "runs"
    assert main(["run", "pytorch-gd", "--runs-dir", str(root)]) == 0
    uri = tracking.use_local_store(root)
    assert uri == f"sqlite:///{root.resolve()}/mlflow.db"
    assert (track_local_runs(root), track_local_runs(root)) == (1, 0)  # once only
    [run] = _runs(MlflowClient(uri), "dlx-local")
    assert run.data.tags["dlx.topic"] == "pytorch-gd" and "test_mse" in run.data.metrics
    assert (root / "mlartifacts").is_dir()

    port = _free_port()
    ui = subprocess.Popen([sys.executable, "-m", "dlx.cli", "ui", "--runs-dir", str(root), "--port", str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, "dlx ui did not start"
                time.sleep(0.5)
    finally:
        ui.terminate()
        out = ui.communicate(timeout=30)[0]
    assert f"0 new local run(s) added to {root / 'mlflow.db'}; MLflow UI on http://127.0.0.1:{port}" in out
