"""pytorch-gd: hand-written gradient descent matches torch.optim.SGD, learns to the noise floor, resumes exactly."""
from pathlib import Path

import numpy as np
import pytest
import torch

from components.data import load_dataset, prepare_dataset
from components.errors import DlxError
from components.evaluate import evaluate_run
from components.files import read_json
from components.params import override
from components.topics.optimization import pytorch_gd
from components.topics.optimization.pytorch_gd import TOPIC, Params, make_optimizer
from conftest import Interrupted


@pytest.fixture(scope="module")
def regression(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("regression") / "dataset"
    prepare_dataset("regression", path, seed=0)
    return path


def _model(model_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_dir / pytorch_gd.MODEL_FILE, weights_only=True)


@pytest.mark.parametrize("name, momentum", [("plain", 0.0), ("momentum", 0.9)])
def test_hand_written_steps_match_torch_optim_sgd(name, momentum):
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 5, generator=generator), torch.randn(64, generator=generator)
    init = [torch.randn(5, generator=generator), torch.randn((), generator=generator)]
    params = Params(optimizer=name, learning_rate=0.05, momentum=momentum)
    finals = []
    for optimizer_name in (name, "torch-sgd"):
        weight, bias = (t.clone().requires_grad_() for t in init)
        optimizer = make_optimizer(optimizer_name, [weight, bias], params)
        for step in range(50):
            rows = slice(step % 4 * 16, step % 4 * 16 + 16)
            optimizer.zero_grad()
            ((x[rows] @ weight + bias - y[rows]) ** 2).mean().backward()
            optimizer.step()
        finals.append((weight.detach(), bias.detach()))
    (hand_w, hand_b), (sgd_w, sgd_b) = finals
    assert not torch.equal(hand_w, init[0])
    # Equal up to float32 rounding: ``p -= lr * v`` rounds lr * v first, torch's add_(v, alpha=-lr) may fuse.
    torch.testing.assert_close(hand_w, sgd_w, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(hand_b, sgd_b, rtol=1e-6, atol=1e-7)


def test_trained_by_hand_equals_trained_by_torch_optim(regression, tmp_path):
    for optimizer in ("momentum", "torch-sgd"):
        TOPIC.train(regression, tmp_path / optimizer, Params(optimizer=optimizer, epochs=30, batch_size=100), 0)
    hand, library = _model(tmp_path / "momentum"), _model(tmp_path / "torch-sgd")
    for key in ("weight", "bias"):
        torch.testing.assert_close(hand[key], library[key], rtol=1e-5, atol=1e-6)


def test_topic_learns_to_the_noise_floor_and_reports(regression, tmp_path, capsys):
    summary = TOPIC.train(regression, tmp_path / "model", Params(), 0)
    assert "epoch 100/100: train mse" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "history.json", "model.pt", "params.json", "train.json"]
    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    history = read_json(tmp_path / "model" / "history.json")
    assert sorted(history) == ["mse", "val_mse"] and len(history["mse"]) == 100

    metrics = evaluate_run(TOPIC, regression, tmp_path / "model", tmp_path / "eval")
    floor, test, baseline = metrics["noise_floor"]["rmse"], metrics["test"]["rmse"], metrics["baseline"]
    assert test <= 1.1 * floor
    assert test < baseline["train_mean"]["rmse"] / 5
    assert test <= baseline["least_squares"]["rmse"] * 1.01
    assert metrics["coefficients"]["max_abs_error"] < 0.1
    assert metrics["plots"] == ["learning_curves.png", "predicted_vs_true.png"]
    assert (tmp_path / "eval" / "report.html").read_text().count("data:image/png;base64,") == 2


@pytest.mark.parametrize("optimizer", ["momentum", "torch-sgd", "plain"])
def test_resumed_run_reproduces_the_uninterrupted_one(optimizer, regression, tmp_path, epochs_run, capsys):
    params = Params(optimizer=optimizer, epochs=6, batch_size=64)
    TOPIC.train(regression, tmp_path / "straight", params, 0)
    checkpoints = tmp_path / "checkpoints"
    epochs_run.count, epochs_run.stop_after = 0, 3
    with pytest.raises(Interrupted):
        TOPIC.train(regression, tmp_path / "resumed", params, 0, checkpoints)
    assert not (tmp_path / "resumed").exists()

    epochs_run.count, epochs_run.stop_after = 0, None
    TOPIC.train(regression, tmp_path / "resumed", params, 0, checkpoints)
    assert "resuming from the checkpoint after epoch 3" in capsys.readouterr().out
    assert epochs_run.count == 3
    straight, resumed = _model(tmp_path / "straight"), _model(tmp_path / "resumed")
    assert all(torch.equal(straight[key], resumed[key]) for key in ("weight", "bias"))
    assert read_json(tmp_path / "resumed" / "history.json") == read_json(tmp_path / "straight" / "history.json")


def test_checkpoint_of_a_finished_or_another_run(regression, tmp_path, epochs_run):
    checkpoints = tmp_path / "checkpoints"
    TOPIC.train(regression, tmp_path / "m1", Params(epochs=3), 0, checkpoints)
    TOPIC.train(regression, tmp_path / "m2", Params(epochs=3), 0, checkpoints)
    assert epochs_run.count == 3  # the rerun of the finished run trained nothing
    assert torch.equal(_model(tmp_path / "m1")["weight"], _model(tmp_path / "m2")["weight"])
    TOPIC.train(regression, tmp_path / "m3", Params(epochs=3, learning_rate=0.01), 0, checkpoints)
    assert epochs_run.count == 6  # another run's checkpoint is not resumed


def test_same_seed_same_run_other_seed_other_run(regression, tmp_path):
    params = Params(epochs=5, batch_size=32)
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        TOPIC.train(regression, tmp_path / name, params, seed)
    a, b, c = (_model(tmp_path / name)["weight"] for name in "abc")
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_regression_data_set_keeps_test_split_across_seeds(regression, tmp_path):
    other = tmp_path / "seed-1"
    meta = prepare_dataset("regression", other, seed=1)
    (first, _), (second, _) = load_dataset(regression), load_dataset(other)
    assert meta["splits"] == {"train": 1800, "val": 200, "test": 1000}
    assert first["x_train"].dtype == np.float32 and first["x_train"].shape == (1800, 10)
    assert np.array_equal(first["x_test"], second["x_test"]) and np.array_equal(first["y_test"], second["y_test"])
    assert not np.array_equal(first["y_val"], second["y_val"])
    assert meta["truth"]["noise_sigma"] == 0.5 and len(meta["truth"]["weights"]) == 10


def test_cuda_asked_for_without_cuda_is_a_one_line_error(regression, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pytorch_gd.pick_device("auto") == "cpu"
    with pytest.raises(DlxError, match="device=cuda was asked for but CUDA is not available") as error:
        TOPIC.train(regression, tmp_path / "model", Params(device="cuda"), 0)
    assert "\n" not in str(error.value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pytorch_gd.pick_device("auto") == "cuda"


@pytest.mark.parametrize("bad", ["learning_rate=0", "momentum=1", "batch_size=-1", "optimizer=adam", "device=gpu"])
def test_bad_parameters_are_user_errors(bad):
    with pytest.raises(DlxError, match="pytorch-gd"):
        override(Params, [bad], "pytorch-gd")
