"""Checkpoint and resume of the Keras trainers: an interrupted job carries on where it stopped."""
from pathlib import Path

import keras
import pytest

from components import steps
from components.files import read_json

EPOCHS = '{"epochs": 4}'


class Interrupted(Exception):
    """Stands in for a spot interruption."""


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("digits") / "dataset"
    steps.prepare("digits", "", 0, path)
    return path


@pytest.fixture
def epochs_run(monkeypatch) -> list[tuple[int, int]]:
    """(epoch, optimizer iterations) at the start of every epoch that fit() really runs.

    A test may set ``stop_at`` on the returned list to interrupt training as that epoch begins.
    """
    class Record(list):
        stop_at: int | None = None

    record = Record()
    fit = keras.Model.fit

    def on_epoch_begin(model, epoch):
        if epoch == record.stop_at:
            raise Interrupted(f"interrupted before epoch {epoch + 1}")
        record.append((epoch, int(model.optimizer.iterations)))

    def recording_fit(self, *args, callbacks=None, **kwargs):
        spy = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: on_epoch_begin(self, epoch))
        return fit(self, *args, callbacks=[*(callbacks or []), spy], **kwargs)

    monkeypatch.setattr(keras.Model, "fit", recording_fit)
    return record


def test_interrupted_run_resumes_after_the_last_saved_epoch(digits, tmp_path, epochs_run):
    checkpoints = tmp_path / "checkpoints"
    epochs_run.stop_at = 2
    with pytest.raises(Interrupted):
        steps.train("mnist-mlp", EPOCHS, 0, digits, tmp_path / "model", checkpoints)
    assert not (tmp_path / "model").exists()
    assert [epoch for epoch, _ in epochs_run] == [0, 1]
    steps_per_epoch = epochs_run[1][1]
    first_attempt_seconds = read_json(checkpoints / "epochs.json")["elapsed"][-1]

    epochs_run.clear()
    epochs_run.stop_at = None
    summary = steps.train("mnist-mlp", EPOCHS, 0, digits, tmp_path / "model", checkpoints)

    # Only epochs 3 and 4 ran, with the optimizer (and so the cosine schedule) where it stopped.
    assert epochs_run == [(2, 2 * steps_per_epoch), (3, 3 * steps_per_epoch)]
    history = read_json(tmp_path / "model" / "history.json")
    assert {len(values) for values in history.values()} == {4}
    assert summary["train_seconds"] > first_attempt_seconds
    metrics = steps.evaluate("mnist-mlp", digits, tmp_path / "model", tmp_path / "eval")
    assert metrics["test"]["accuracy"] > 0.8

    # It ends where the uninterrupted run ends: the same order of examples and the same dropout
    # masks each epoch, so the same figures to the last digit.
    steps.train("mnist-mlp", EPOCHS, 0, digits, tmp_path / "whole")
    assert read_json(tmp_path / "whole" / "history.json") == history
    whole = steps.evaluate("mnist-mlp", digits, tmp_path / "whole", tmp_path / "whole-eval")
    assert whole["test"] == metrics["test"]


def test_rerun_of_a_finished_run_trains_nothing(digits, tmp_path, epochs_run):
    checkpoints = tmp_path / "checkpoints"
    first = steps.train("mnist-mlp", '{"epochs": 2}', 0, digits, tmp_path / "m1", checkpoints)
    epochs_run.clear()
    again = steps.train("mnist-mlp", '{"epochs": 2}', 0, digits, tmp_path / "m2", checkpoints)
    assert epochs_run == []
    assert read_json(tmp_path / "m2" / "history.json") == read_json(tmp_path / "m1" / "history.json")
    assert again["val_accuracy"] == first["val_accuracy"]
    assert again["train_seconds"] >= read_json(checkpoints / "epochs.json")["elapsed"][-1] > 0


def test_checkpoint_of_another_run_is_not_resumed(digits, tmp_path, epochs_run):
    checkpoints = tmp_path / "checkpoints"
    steps.train("mnist-mlp", '{"epochs": 2}', 0, digits, tmp_path / "m1", checkpoints)
    epochs_run.clear()
    steps.train("mnist-mlp", '{"epochs": 2, "hidden_units": [64]}', 0, digits, tmp_path / "m2", checkpoints)
    assert [epoch for epoch, _ in epochs_run] == [0, 1]
    assert len(read_json(tmp_path / "m2" / "history.json")["loss"]) == 2


def test_without_checkpoint_dir_every_run_starts_afresh(digits, tmp_path, epochs_run):
    for name in ("m1", "m2"):
        summary = steps.train("mnist-mlp", '{"epochs": 2}', 0, digits, tmp_path / name)
        assert sorted(summary) == ["backend", "device", "parameters", "precision", "replicas", "samples_per_second",
                                   "seed", "train_seconds", "val_accuracy"]
    assert [epoch for epoch, _ in epochs_run] == [0, 1, 0, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1", "m2"]
    model_files = sorted(p.name for p in (tmp_path / "m1").iterdir())
    assert model_files == ["history.json", "manifest.json", "model.keras", "params.json", "predictions.npz", "train.json"]
    history = read_json(tmp_path / "m1" / "history.json")
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert {len(values) for values in history.values()} == {2}


TORCH_BACKEND_RESUME = """
import json, os, sys
from pathlib import Path
os.environ["KERAS_BACKEND"] = "torch"
import keras
from components import steps
work = Path(sys.argv[1])
steps.prepare("digits", "", 0, work / "digits")
job = json.dumps({"epochs": 4, "backend": "torch"})
steps.train("mnist-mlp", job, 0, work / "digits", work / "straight")

class Interrupted(Exception):
    pass

fit = keras.Model.fit
def stop_before_epoch_3(self, *args, callbacks=None, **kwargs):
    def begin(epoch, logs):
        if epoch == 2:
            raise Interrupted()
    return fit(self, *args, callbacks=[*(callbacks or []), keras.callbacks.LambdaCallback(on_epoch_begin=begin)], **kwargs)
keras.Model.fit = stop_before_epoch_3
try:
    steps.train("mnist-mlp", job, 0, work / "digits", work / "resumed", work / "checkpoints")
except Interrupted:
    pass
keras.Model.fit = fit
steps.train("mnist-mlp", job, 0, work / "digits", work / "resumed", work / "checkpoints")
"""


def test_the_torch_backend_resumes_exactly_too(tmp_path):
    """Keras on PyTorch draws dropout from torch's generator: resume must repeat it (own process,
    since this one runs Keras on TensorFlow)."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", TORCH_BACKEND_RESUME, str(tmp_path)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "resuming from the checkpoint after epoch 2" in run.stdout
    assert read_json(tmp_path / "resumed" / "history.json") == read_json(tmp_path / "straight" / "history.json")
