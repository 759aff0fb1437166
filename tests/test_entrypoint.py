"""The SageMaker entrypoint, run in-process against a temporary directory laid out like /opt/ml."""
import json
import shutil
from pathlib import Path

import pytest

from containers import entrypoint
from components.files import read_json


@pytest.fixture
def ml_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "ml"
    (root / "input" / "config").mkdir(parents=True)
    monkeypatch.setenv(entrypoint.ROOT_ENV, str(root))
    return root


def hyperparameters(root: Path, **values: str) -> None:
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(values))


def test_trains_evaluates_and_leaves_the_model_for_upload(ml_root, capsys):
    hyperparameters(ml_root, topic="mnist-mlp", dataset="digits", epochs="2", seed="3")
    assert entrypoint.main(["train"]) == 0

    model = ml_root / "model"
    assert sorted(p.name for p in model.iterdir()) == ["evaluation", "metrics.json", "model"]
    assert {"model.keras", "params.json", "history.json", "train.json"} <= {p.name for p in (model / "model").iterdir()}
    assert {"metrics.json", "report.html", "confusion_matrix.png"} <= {p.name for p in (model / "evaluation").iterdir()}
    metrics = read_json(model / "metrics.json")
    assert metrics["topic"] == "mnist-mlp" and metrics["dataset"] == "digits" and metrics["seed"] == 3
    assert metrics["params"]["epochs"] == 2
    assert 0 <= metrics["test"]["accuracy"] <= 1 and "random_forest" in metrics["baseline"]
    assert metrics["wall_seconds"] >= metrics["train_seconds"] > 0
    assert (ml_root / "checkpoints" / "epochs.json").is_file()
    assert not (ml_root / "output" / "failure").exists()
    out = capsys.readouterr().out
    assert "dlx [1/3]" in out and "dlx [3/3]" in out
    assert out.strip().splitlines()[-1].startswith("mnist-mlp on digits: test accuracy 0.")
    assert "random_forest" in out.strip().splitlines()[-1]

    # A restarted job finds the finished run's checkpoint (and its own earlier outputs).
    assert entrypoint.main(["train"]) == 0
    assert "nothing left to train" in capsys.readouterr().out
    again = read_json(model / "metrics.json")
    assert again["test"] == metrics["test"]
    assert read_json(model / "model" / "history.json") == read_json(ml_root / "checkpoints" / "epochs.json")["history"]


def test_mnist_comes_from_the_data_channel(ml_root, fake_mnist):
    shutil.copytree(fake_mnist, ml_root / "input" / "data" / "data")
    hyperparameters(ml_root, topic="mnist-mlp", dataset="mnist", epochs="2", hidden_units="32")
    assert entrypoint.main(["train"]) == 0
    metrics = read_json(ml_root / "model" / "metrics.json")
    assert metrics["dataset"] == "mnist"
    assert str(ml_root / "input" / "data" / "data") in metrics["data_source"]
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 20  # the fake t10k split


@pytest.mark.parametrize("values, reason", [
    ({"topic": "mnist-mlpp"}, "unknown topic 'mnist-mlpp'"),
    ({"topic": "mnist-mlp", "epochz": "3"},
     "unknown hyperparameter(s) epochz for mnist-mlp; valid: dataset, dataset_options, seed, or a parameter: "),
    ({"topic": "mnist-mlp", "epochs": "two"}, "bad value 'two' for parameter epochs (int)"),
    ({"topic": "mnist-mlp", "epochs": "0"}, "bad value 0 for parameter epochs of mnist-mlp: must be >= 1; see `dlx list`"),
    ({"topic": "mnist-mlp", "data_dir": "/data"}, "unknown hyperparameter(s) data_dir"),
    ({"topic": "mnist-mlp", "dataset_options": "{split"}, "hyperparameter dataset_options is not JSON"),
    ({"topic": "mnist-mlp", "seed": "zero"}, "hyperparameter seed must be a whole number, not 'zero'"),
    ({"topic": "mnist-mlp", "dataset": "cifar10"}, "does not take data set 'cifar10'"),
    ({"topic": "mnist-mlp", "dataset": "mnist"}, "needs its files in the 'data' input channel"),
    ({"dataset": "digits"}, "hyperparameter topic is missing"),
])
def test_bad_hyperparameters_fail_with_one_line_reason(ml_root, capsys, values, reason):
    hyperparameters(ml_root, **values)
    assert entrypoint.main(["train"]) == 2
    failure = (ml_root / "output" / "failure").read_text()
    assert reason in failure and failure.count("\n") == 1
    err = capsys.readouterr().err
    assert err == f"dlx: error: {failure}" and "Traceback" not in err
    assert not (ml_root / "model").exists()


def test_missing_hyperparameters_file_is_reported(ml_root):
    assert entrypoint.main(["train"]) == 2
    assert "hyperparameters.json is missing" in (ml_root / "output" / "failure").read_text()


def test_unexpected_error_reports_its_type_and_message(ml_root, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("out of GPU memory")

    monkeypatch.setattr(entrypoint.steps, "train", broken)
    hyperparameters(ml_root, topic="mnist-mlp")
    assert entrypoint.main(["train"]) == 1
    assert (ml_root / "output" / "failure").read_text() == "RuntimeError: out of GPU memory\n"
    assert "Traceback" in capsys.readouterr().err
    assert not (ml_root / "model" / "metrics.json").exists()


def test_unwritable_model_dir_fails_before_training(ml_root, monkeypatch):
    """Where the platform mounts /opt/ml for root only, say so at once, not after an hour of training."""
    model = ml_root / "model"
    monkeypatch.setattr(entrypoint.os, "access", lambda path, mode: Path(path) != model)
    monkeypatch.setattr(entrypoint.steps, "prepare", lambda *args: pytest.fail("prepared despite the unwritable dir"))
    hyperparameters(ml_root, topic="mnist-mlp")
    assert entrypoint.main(["train"]) == 2
    failure = (ml_root / "output" / "failure").read_text()
    assert failure.startswith(f"{model} is not writable by this container's user") and "RUN_AS=0" in failure


def test_anything_but_train_is_a_usage_error(ml_root, capsys):
    assert entrypoint.main(["serve"]) == 2
    assert "usage: python -m containers.entrypoint train" in capsys.readouterr().err


def test_parameters_may_come_by_name_and_the_keys_sagemaker_adds_are_ignored(ml_root, capsys):
    import re

    from components.image import METRIC_REGEX

    hyperparameters(ml_root, topic="mnist-mlp", dataset="digits", dropout="0.1",
                    epochs="2", learning_rate="0.002", hidden_units="64,32",
                    _tuning_objective_metric="val_accuracy", sagemaker_program="ignored")
    assert entrypoint.main(["train"]) == 0
    params = read_json(ml_root / "model" / "metrics.json")["params"]
    assert (params["epochs"], params["learning_rate"], params["hidden_units"], params["dropout"]) == (2, 0.002, [64, 32], 0.1)
    out = capsys.readouterr().out
    history = read_json(ml_root / "model" / "model" / "history.json")
    (val,) = re.findall(METRIC_REGEX.format(name="val_accuracy"), out)
    assert float(val) == pytest.approx(history["val_accuracy"][-1], rel=1e-5)
    (test,) = re.findall(METRIC_REGEX.format(name="test_accuracy"), out)
    assert float(test) == pytest.approx(read_json(ml_root / "model" / "metrics.json")["test"]["accuracy"], rel=1e-5)


def test_a_bad_parameter_by_name_is_one_line(ml_root, capsys):
    hyperparameters(ml_root, topic="mnist-mlp", learning_rate="fast")
    assert entrypoint.main(["train"]) == 2
    assert "bad value 'fast' for parameter learning_rate (float) of mnist-mlp" in capsys.readouterr().err
    hyperparameters(ml_root, topic="mnist-mlp", learning_rat="0.1")
    assert entrypoint.main(["train"]) == 2
    err = capsys.readouterr().err
    assert "unknown hyperparameter(s) learning_rat" in err and "or a parameter: epochs" in err
