"""`dlx run` end to end through kfp.local, what its console shows, `dlx runs`, and a failing step's one-line error."""
import os
import re
import subprocess
import sys

import numpy as np

from components.files import read_json
from dlx.cli import main


def test_run_writes_a_complete_run_directory_and_lists_it(tmp_path, capsys):
    runs = tmp_path / "runs"
    champion = tmp_path / "champions" / "mnist-mlp.json"
    assert main(["run", "mnist-mlp", "--param", "epochs=3", "--seed", "1", "--runs-dir", str(runs),
                 "--champion", str(champion)]) == 0
    out = capsys.readouterr().out
    (run_dir,) = (path for path in runs.iterdir() if path.is_dir())
    assert run_dir.name.startswith("mnist-mlp-")

    metrics = read_json(run_dir / "metrics.json")
    assert {"topic", "dataset", "params", "test", "baseline", "train_seconds", "dlx_version"} <= set(metrics)
    assert (metrics["topic"], metrics["dataset"], metrics["seed"]) == ("mnist-mlp", "digits", 1)
    assert metrics["params"]["epochs"] == 3
    assert 0.5 < metrics["test"]["accuracy"] <= 1 and "random_forest" in metrics["baseline"]
    assert metrics["wall_seconds"] > metrics["train_seconds"] > 0
    assert metrics["promotion"]["promoted"] and "no champion yet" in metrics["promotion"]["reason"]
    assert read_json(champion)["value"] == metrics["test"]["accuracy"]
    assert "promoted" in (run_dir / "report.html").read_text()

    for path in ("prepare/dataset/data.npz", "prepare/dataset/meta.json", "train/model/model.keras",
                 "train/model/history.json", "evaluate/evaluation/learning_curves.png", "report.html", "pipeline.log"):
        assert (run_dir / path).is_file(), path
    assert read_json(run_dir / "prepare" / "dataset" / "meta.json")["seed"] == 1
    assert not (run_dir / "tmp").exists() and not (run_dir / "kfp").exists()
    assert sorted(p.name for p in runs.iterdir()) == sorted([run_dir.name, "index.html"])
    assert (metrics["run_id"], metrics["verdict"]["baseline"]) == (run_dir.name, "random_forest")
    assert (run_dir / "evaluate" / "report.html").is_file() and (run_dir / "evaluate" / "interactive.html").is_file()
    assert f'href="{run_dir.name}/report.html"' in (runs / "index.html").read_text()

    # The console shows each step, the epochs and a summary; kfp's own lines stay in the log.
    for shown in ("prepare   done in", "train     epoch 3/3", "evaluate  done in", "test      accuracy",
                  str(run_dir), "champion  promoted", "verdict   test accuracy"):
        assert shown in out, shown
    assert "Got executor_input" not in out and "Executing task" not in out
    log = (run_dir / "pipeline.log").read_text()
    assert "Got executor_input" in log and "Executing task 'train'" in log and "epoch 3/3: accuracy" in log

    assert main(["runs", "--runs-dir", str(runs)]) == 0
    table = capsys.readouterr().out
    assert run_dir.name in table and "epochs=3" in table and "random_forest" in table
    assert main(["runs", "mnist-cnn", "--runs-dir", str(runs)]) == 0
    assert run_dir.name not in capsys.readouterr().out


def test_failing_step_ends_in_one_line_and_no_complete_run(tmp_path, capsys, fake_mnist, write_file, idx_bytes):
    write_file(fake_mnist / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros((3, 2))))  # 2-D: wrong magic for labels
    runs = tmp_path / "runs"
    code = main(["run", "mnist-mlp", "--dataset", "mnist", "--data-dir", str(fake_mnist), "--runs-dir", str(runs)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and "train-labels-idx1-ubyte.gz" in captured.err
    assert "Traceback" not in captured.out + captured.err
    (failed,) = runs.iterdir()
    assert failed.name.endswith(".failed") and not (failed / "metrics.json").exists()
    assert "pipeline.log" in captured.err


def test_ratings_topic_runs_locally_with_its_embedding_map_as_an_html_artifact(tmp_path, capsys):
    runs = tmp_path / "runs"
    options = ["users=80", "items=50", "density=0.4"]
    assert main(["run", "cf-regularized", "--param", "epochs=15", "--runs-dir", str(runs),
                 *(f"--dataset-option={option}" for option in options)]) == 0
    (run_dir,) = (path for path in runs.iterdir() if path.is_dir())
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["dataset"] == "synthetic-ratings"
    assert read_json(run_dir / "prepare" / "dataset" / "meta.json")["options"]["users"] == 80
    assert metrics["test"]["rmse"] < metrics["baseline"]["global_mean"]["rmse"]
    assert "item_bias_top" in metrics and (run_dir / "train" / "model" / "model.pt").is_file()
    page = (run_dir / "evaluate" / "interactive.html").read_text()
    assert "Bokeh" in page and "item embeddings" in page
    assert "beats the" in capsys.readouterr().out


def test_console_in_a_file_has_no_escapes_and_no_kfp_lines(tmp_path):
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        done = subprocess.run([sys.executable, "-m", "dlx.cli", "run", "pytorch-gd", "--param", "epochs=5",
                               "--runs-dir", str(tmp_path / "runs")], stdout=stdout, stderr=subprocess.PIPE,
                              text=True, timeout=600, env={**os.environ, "TERM": "xterm-256color"})
    text = out.read_text()
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in text
    assert not re.search(r"^\d\d:\d\d:\d\d\.\d{3} - (INFO|WARNING)", text, re.MULTILINE)
    assert re.search(r"^train +epoch 5/5 +mse", text, re.MULTILINE) and "verdict   test RMSE" in text


def test_two_runs_with_one_out_never_destroy_each_other_and_prune_removes_only_stale_ones(tmp_path, capsys):
    """The run directory is claimed exclusively; a claim whose process is gone is stale."""
    import os
    import subprocess
    import sys

    from pipelines.local import OWNER_FILE, claim, stale

    out = tmp_path / "runs" / "r1"
    partial = claim(out)  # a run in progress, this process's
    assert main(["run", "pytorch-gd", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"another run is writing {out}" in err and "dlx runs --prune" in err
    assert partial.is_dir() and (partial / OWNER_FILE).read_text() == str(os.getpid())  # untouched

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = claim(tmp_path / "runs" / "r2")
    (dead / OWNER_FILE).write_text(gone.stdout.strip())  # its writer has exited
    failed = tmp_path / "runs" / "r3.failed"
    failed.mkdir()
    assert stale(tmp_path / "runs") == [dead, failed]
    assert main(["runs", "--prune", "--runs-dir", str(tmp_path / "runs")]) == 0
    assert "2 stale run directories removed" in capsys.readouterr().out
    assert partial.is_dir() and not dead.exists() and not failed.exists()
