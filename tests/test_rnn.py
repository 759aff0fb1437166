"""rnn: the hand-written cell equals nn.RNN, clipping bounds the gradient, both tasks learn, runs resume exactly."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from components.data import prepare_dataset
from components.errors import DlxError
from components.evaluate import evaluate_run, verdict
from components.files import read_json
from components.topics import torch_loop
from components.topics.sequences.rnn import TOPIC, Params
from components.topics.sequences.rnn.cells import ManualRNN, clip_grad_norm
from components.topics.torch_loop import MODEL_FILE
from conftest import Interrupted

SINE = {"window": "16", "hidden_size": "32", "epochs": "6", "learning_rate": "0.01"}
TEXT = {"epochs": "12", "hidden_size": "32", "embedding_size": "16"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sine(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sine") / "dataset"
    prepare_dataset("sine", path, seed=0, val_fraction=0.15, options={"length": "1500"})
    return path


@pytest.fixture(scope="module")
def text_sample(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "dataset"
    prepare_dataset("text-sample", path, seed=0, options={"folds": "3"})
    return path


def _params(dataset: str, **values: str) -> Params:
    return TOPIC.params_for(dataset, [f"{k}={v}" for k, v in values.items()])


def _model(model_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_dir / MODEL_FILE, weights_only=True)


# --- the hand-written cell and clipping ---------------------------------------------------------

@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_hand_written_cell_equals_nn_rnn_outputs_and_gradients(nonlinearity):
    torch.manual_seed(0)
    library = torch.nn.RNN(3, 5, num_layers=2, nonlinearity=nonlinearity, batch_first=True)
    manual = ManualRNN(3, 5, layers=2, nonlinearity=nonlinearity)
    manual.load_state_dict(library.state_dict())
    x = torch.randn(4, 7, 3)
    runs = []
    for module in (manual, library):
        module.zero_grad()
        output, h_n = module(x)
        (output.square().sum() + h_n.sum()).backward()
        runs.append((output, h_n, {name: p.grad.clone() for name, p in module.named_parameters()}))
    (out_m, h_m, grad_m), (out_l, h_l, grad_l) = runs
    torch.testing.assert_close(out_m, out_l, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h_m, h_l, rtol=1e-5, atol=1e-6)
    assert grad_m.keys() == grad_l.keys()
    for name in grad_m:
        torch.testing.assert_close(grad_m[name], grad_l[name], rtol=1e-4, atol=1e-5)


def test_hand_written_cell_on_packed_sequences_stops_at_each_length():
    torch.manual_seed(1)
    library = torch.nn.RNN(3, 4, batch_first=True)
    manual = ManualRNN(3, 4, identity_init=False)
    manual.load_state_dict(library.state_dict())
    x, lengths = torch.randn(5, 6, 3), torch.tensor([2, 6, 1, 4, 6])
    (packed_m, h_m), (packed_l, h_l) = (module(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
                                        for module in (manual, library))
    torch.testing.assert_close(h_m, h_l, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(pad_packed_sequence(packed_m, batch_first=True)[0],
                               pad_packed_sequence(packed_l, batch_first=True)[0], rtol=1e-5, atol=1e-6)
    # the final state of a short sequence is the output at its own last step, not after padding
    alone, _ = manual(x[2:3, :1])
    torch.testing.assert_close(h_m[0, 2], alone[0, -1])


def test_hand_written_cell_starts_as_the_identity():
    cell = ManualRNN(3, 6, layers=2)
    for layer in range(2):
        assert torch.equal(getattr(cell, f"weight_hh_l{layer}"), torch.eye(6))
        assert not getattr(cell, f"bias_ih_l{layer}").any() and not getattr(cell, f"bias_hh_l{layer}").any()


def test_clipping_bounds_the_global_gradient_norm_as_torch_does():
    torch.manual_seed(2)
    weights = [torch.randn(4, 3, requires_grad=True), torch.randn(5, requires_grad=True)]
    for p in weights:
        p.grad = 100 * torch.randn_like(p)
    copies = [p.detach().clone().requires_grad_() for p in weights]
    for p, c in zip(weights, copies):
        c.grad = p.grad.clone()
    before = float(clip_grad_norm(weights, 1.5))
    expected = float(torch.nn.utils.clip_grad_norm_(copies, 1.5))
    after = float(torch.sqrt(sum(p.grad.square().sum() for p in weights)))
    assert before == pytest.approx(expected) and before > 100
    assert after <= 1.5 + 1e-5
    for p, c in zip(weights, copies):
        torch.testing.assert_close(p.grad, c.grad)
    small = [p.grad.clone() for p in weights]
    clip_grad_norm(weights, 10.0)  # already below: unchanged
    assert all(torch.equal(p.grad, s) for p, s in zip(weights, small))


# --- the signal task ----------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["manual", "gru"])
def test_sine_beats_predicting_the_last_value(cell, sine, tmp_path, capsys):
    summary = TOPIC.train(sine, tmp_path / "model", _params("sine", cell=cell, **SINE), 0)
    out = capsys.readouterr().out
    assert "epoch 6/6: mse" in out and "sequences/s" in out
    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert summary["val_mse"] < summary["val_persistence_mse"]

    metrics = evaluate_run(TOPIC, sine, tmp_path / "model", tmp_path / "eval")
    test, baseline = metrics["test"]["mse"], metrics["baseline"]
    assert test < baseline["persistence"]["mse"] < baseline["mean"]["mse"]
    assert test > metrics["noise_floor"]["mse"] * 0.9  # nothing beats the noise
    assert metrics["rollout"]["steps"] == 200
    assert metrics["plots"] == ["learning_curves.png", "rollout.png"]
    assert "beats the persistence baseline" in verdict(metrics, TOPIC)


def test_text_task_has_its_own_main_metric():
    assert (TOPIC.main_metric, TOPIC.higher_is_better) == ("mse", False)
    for name in ("text-sample", "sentiment-sentences", "text-file:my.csv"):
        text = TOPIC.for_dataset(name)
        assert (text.main_metric, text.higher_is_better) == ("accuracy", True)


class SaveCounter:
    """Counts the epochs saved; raises after saving epoch ``stop_after`` (a kill right after a checkpoint)."""

    def __init__(self) -> None:
        self.count, self.stop_after = 0, None


@pytest.fixture
def saves(monkeypatch) -> SaveCounter:
    counter = SaveCounter()
    save = torch_loop.save_state

    def counting_save(checkpoint_dir, epochs_done, *args, **kwargs):
        save(checkpoint_dir, epochs_done, *args, **kwargs)
        counter.count += 1
        if counter.count == counter.stop_after:
            raise Interrupted(f"interrupted after epoch {epochs_done}")

    monkeypatch.setattr(torch_loop, "save_state", counting_save)
    return counter


@pytest.mark.parametrize("cell", ["manual", "lstm"])
def test_resumed_sine_run_reproduces_the_uninterrupted_one(cell, sine, tmp_path, saves, capsys):
    params = _params("sine", cell=cell, **{**SINE, "epochs": "4"})
    TOPIC.train(sine, tmp_path / "straight", params, 0)
    checkpoints = tmp_path / "checkpoints"
    saves.count, saves.stop_after = 0, 2
    with pytest.raises(Interrupted):
        TOPIC.train(sine, tmp_path / "resumed", params, 0, checkpoints)
    assert not (tmp_path / "resumed").exists()

    saves.count, saves.stop_after = 0, None
    TOPIC.train(sine, tmp_path / "resumed", params, 0, checkpoints)
    assert "resuming from the checkpoint after epoch 2" in capsys.readouterr().out
    assert saves.count == 2
    straight, resumed = _model(tmp_path / "straight"), _model(tmp_path / "resumed")
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert read_json(tmp_path / "resumed" / "history.json") == read_json(tmp_path / "straight" / "history.json")


def test_same_seed_same_model_other_seed_other_model(sine, tmp_path):
    params = _params("sine", **{**SINE, "epochs": "1"})
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        TOPIC.train(sine, tmp_path / name, params, seed)
    a, b, c = (_model(tmp_path / name)["head.weight"] for name in "abc")
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- the text task ------------------------------------------------------------------------------

@pytest.mark.parametrize("tokens, cell", [("word", "manual"), ("char", "gru")])
def test_text_sample_beats_the_majority_class(tokens, cell, text_sample, tmp_path, capsys):
    extra = {"learning_rate": "0.02", "epochs": "8", "batch_size": "32"} if tokens == "char" else {}
    params = _params("text-sample", tokens=tokens, cell=cell, **{**TEXT, **extra})
    TOPIC.train(text_sample, tmp_path / "model", params, 0)
    out = capsys.readouterr().out
    assert f"fold-2: epoch {params.epochs}/{params.epochs}: loss" in out and ("characters/s" if tokens == "char" else "words/s") in out
    metrics = evaluate_run(TOPIC.for_dataset("text-sample"), text_sample, tmp_path / "model", tmp_path / "eval")
    accuracy, majority = metrics["test"]["accuracy"], metrics["baseline"]["majority_class"]["accuracy"]
    assert accuracy > majority + 0.15, (accuracy, majority)
    assert len(metrics["folds"]) == 3
    assert metrics["plots"] == ["confusion_matrix.png", "learning_curves.png"]
    from components.topics.predict import predict  # what `dlx predict` calls

    labels, probabilities = predict(tmp_path / "model", ["the film was wonderful", ""])
    assert labels == ["negative", "positive"]
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(axis=1), 1)


def test_resumed_text_run_redoes_nothing_it_finished(text_sample, tmp_path, saves):
    params = _params("text-sample", **{**TEXT, "epochs": "2"})
    TOPIC.train(text_sample, tmp_path / "straight", params, 0)
    saves.count, saves.stop_after = 0, 5  # fold 0 and fold 1 done, fold 2 after its first epoch
    with pytest.raises(Interrupted):
        TOPIC.train(text_sample, tmp_path / "resumed", params, 0, tmp_path / "checkpoints")
    saves.count, saves.stop_after = 0, None
    TOPIC.train(text_sample, tmp_path / "resumed", params, 0, tmp_path / "checkpoints")
    assert saves.count == 3  # fold 2's second epoch and the final model's two
    straight, resumed = _model(tmp_path / "straight"), _model(tmp_path / "resumed")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    for name in ("oof.npz",):
        with np.load(tmp_path / "straight" / name) as a, np.load(tmp_path / "resumed" / name) as b:
            assert np.array_equal(a["probabilities"], b["probabilities"])


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, message", [
    (["cell=rnn"], "bad value 'rnn' for parameter cell .*choose one of manual, lstm, gru"),
    (["hidden_size=0"], "bad value 0 for parameter hidden_size of rnn: must be >= 1; see `dlx list`"),
    (["clip=-1"], "bad value -1.0 for parameter clip of rnn: must be >= 0"),
    (["tokens=byte"], "choose one of char, word"),
    (["dropout=0.5"], "unknown parameter 'dropout' for rnn"),
])
def test_bad_params_are_one_clear_error(overrides, message):
    with pytest.raises(DlxError, match=message):
        TOPIC.params_for("sine", overrides)


def test_bad_data_is_one_clear_error(sine, tmp_path):
    with pytest.raises(DlxError, match="window=600 leaves too few training windows"):
        TOPIC.train(sine, tmp_path / "model", _params("sine", window="600"), 0)
    with pytest.raises(DlxError, match="training diverged in epoch 1"):
        TOPIC.train(sine, tmp_path / "model", _params("sine", window="16", learning_rate="1e6", clip="0"), 0)
    ratings = tmp_path / "ratings"
    prepare_dataset("synthetic-ratings", ratings, seed=0)
    with pytest.raises(DlxError, match="holds ratings data; rnn reads a signal"):
        TOPIC.train(ratings, tmp_path / "model", Params(), 0)
    regression = tmp_path / "regression"
    prepare_dataset("regression", regression, seed=0)
    with pytest.raises(DlxError, match="holds no signal"):
        TOPIC.train(regression, tmp_path / "model", Params(), 0)
    assert not (tmp_path / "model").exists()
    with pytest.raises(DlxError, match="does not take data set 'digits'"):
        TOPIC.check_dataset("digits")
