"""`dlx run` end to end through kfp.local, `dlx runs`, and a failing step's one-line error."""
import numpy as np

from components.files import read_json
from dlx.cli import main


def test_run_writes_a_complete_run_directory_and_lists_it(tmp_path, capsys):
    runs = tmp_path / "runs"
    champion = tmp_path / "champions" / "mnist-mlp.json"
    assert main(["run", "mnist-mlp", "--param", "epochs=3", "--seed", "1", "--runs-dir", str(runs),
                 "--champion", str(champion)]) == 0
    out = capsys.readouterr().out
    (run_dir,) = runs.iterdir()
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
    assert [p.name for p in runs.iterdir()] == [run_dir.name]

    # The console shows progress and a summary; kfp's executor dump stays in the log.
    assert "Epoch 3/3" in out and "test      accuracy" in out and str(run_dir) in out and "champion  promoted" in out
    assert "Got executor_input" not in out
    assert "Got executor_input" in (run_dir / "pipeline.log").read_text()

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
    (run_dir,) = runs.iterdir()
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["dataset"] == "synthetic-ratings"
    assert read_json(run_dir / "prepare" / "dataset" / "meta.json")["options"]["users"] == 80
    assert metrics["test"]["rmse"] < metrics["baseline"]["global_mean"]["rmse"]
    assert "item_bias_top" in metrics and (run_dir / "train" / "model" / "model.pt").is_file()
    page = (run_dir / "evaluate" / "interactive").read_text()
    assert "Bokeh" in page and "item embeddings" in page
    assert "beats the" in capsys.readouterr().out
