"""text-gen: the character language model learns, keeps to its budget, resumes exactly, and samples as asked."""
import math
from pathlib import Path

import pytest
import torch

from components.data import prepare_dataset
from components.data.corpus import builtin_text
from components.errors import DlxError
from components.files import read_json
from components.params import override
from components.topics import torch_loop
from components.topics.sequences import text_gen
from components.topics.sequences.text_gen import model as char_lm
from conftest import Interrupted

SMALL = ["hidden_size=64", "layers=1", "embedding_dim=16", "batch_size=16", "seq_len=32", "learning_rate=0.01",
         "budget_minutes=0", "sample_length=40", "dropout=0", "precision=fp32"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The first 60,000 characters of the built-in corpus, as a text file prepared as one stream."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "docs.txt").write_text(builtin_text()[:60_000], encoding="utf-8")
    prepare_dataset(f"text-file:{root / 'docs.txt'}", root / "dataset", options={"layout": "plain"})
    return root / "dataset"


def _params(*changes: str) -> text_gen.Params:
    return override(text_gen.Params, [*SMALL, *changes], "text-gen")


def _model(model_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_dir / "model.pt", weights_only=True)


def test_learns_well_below_the_uniform_and_unigram_losses(corpus, tmp_path, capsys):
    summary = text_gen.train(corpus, tmp_path / "model", _params("epochs=4"), 0)
    out = capsys.readouterr().out
    assert "epoch 4/4" in out and "chars/s" in out and "bits/char" in out
    metrics = text_gen.evaluate(corpus, tmp_path / "model", tmp_path)
    vocab = len(summary["vocabulary"])
    assert metrics["baseline"]["uniform"]["nats_per_char"] == round(math.log(vocab), 4)
    nats = metrics["test"]["nats_per_char"]
    assert nats < 0.6 * math.log(vocab) and nats < metrics["baseline"]["unigram"]["nats_per_char"] - 0.5
    assert nats == pytest.approx(summary["val_nats_per_char"], abs=1e-3)  # evaluation repeats training's figure
    assert metrics["test"]["bits_per_char"] == pytest.approx(nats / math.log(2), abs=1e-3)
    assert metrics["test"]["perplexity"] == pytest.approx(math.exp(nats), rel=1e-3)
    history = read_json(tmp_path / "model" / "history.json")
    assert history["val_loss"][-1] < history["val_loss"][0]
    # samples at every temperature with every epoch, from the vocabulary only
    assert [entry["epoch"] for entry in summary["samples"]] == [1, 2, 3, 4]
    for entry in summary["samples"]:
        assert [s["temperature"] for s in entry["samples"]] == [0.5, 0.8, 1.0]
        assert all(len(s["text"]) == 40 and set(s["text"]) <= set(summary["vocabulary"]) for s in entry["samples"])
    assert len(metrics["samples"]) == 3 and (tmp_path / "learning_curves.png").is_file()
    from components.evaluate import evaluate_run

    evaluate_run(text_gen.TOPIC, corpus, tmp_path / "model", tmp_path / "run")
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<h2>Samples</h2>" in page and "temperature 0.8" in page


def test_the_builtin_corpus_is_learned_within_seconds(tmp_path):
    prepare_dataset("builtin-corpus", tmp_path / "dataset")
    summary = text_gen.train(tmp_path / "dataset", tmp_path / "model", _params("budget_minutes=0.1"), 0)
    assert summary["budget_spent"] and summary["epochs_run"] < text_gen.Params().epochs  # the budget ended it
    assert summary["train_seconds"] < 6 + 15  # the budget, then one evaluation and the samples
    assert summary["val_nats_per_char"] < 0.7 * math.log(len(summary["vocabulary"]))


def test_resumed_run_reproduces_the_uninterrupted_one(corpus, tmp_path, monkeypatch):
    params = _params("epochs=3", "dropout=0.2", "layers=2")
    text_gen.train(corpus, tmp_path / "straight", params, 5)
    steps, run_step = [0], torch_loop.TrainLoop._step

    def interrupting_step(*args, **kwargs):
        steps[0] += 1
        if steps[0] == 230:  # within the third epoch (of 105 steps each), after two checkpoints
            raise Interrupted
        return run_step(*args, **kwargs)

    monkeypatch.setattr(torch_loop.TrainLoop, "_step", interrupting_step)
    with pytest.raises(Interrupted):
        text_gen.train(corpus, tmp_path / "resumed", params, 5, tmp_path / "checkpoints")
    assert len(read_json(tmp_path / "checkpoints" / "samples.json")) == 2
    steps[0] = -10**9
    summary = text_gen.train(corpus, tmp_path / "resumed", params, 5, tmp_path / "checkpoints")
    straight, resumed = _model(tmp_path / "straight"), _model(tmp_path / "resumed")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert read_json(tmp_path / "resumed" / "history.json") == read_json(tmp_path / "straight" / "history.json")
    assert summary["samples"] == read_json(tmp_path / "straight" / "train.json")["samples"]


def test_a_run_that_spent_its_budget_is_not_trained_further(corpus, tmp_path, capsys):
    params = _params("budget_minutes=0.02", "epochs=100")
    first = text_gen.train(corpus, tmp_path / "m1", params, 0, tmp_path / "checkpoints")
    again = text_gen.train(corpus, tmp_path / "m2", params, 0, tmp_path / "checkpoints")
    assert first["budget_spent"] and first["epochs_run"] < 100
    assert "holds the whole run; nothing left to train" in capsys.readouterr().out
    assert again["steps"] == first["steps"] and again["samples"] == first["samples"]
    assert all(torch.equal(a, b) for a, b in zip(_model(tmp_path / "m1").values(), _model(tmp_path / "m2").values()))


def test_bfloat16_autocast_on_the_cpu_learns_and_evaluates_alike(corpus, tmp_path):
    """precision=bf16 (what auto picks on a CPU with AMX) trains under autocast; the saved float32
    weights score within a hair of what the bfloat16 validation said."""
    summary = text_gen.train(corpus, tmp_path / "model", _params("epochs=3", "precision=bf16"), 0)
    assert summary["precision"] == "bfloat16"
    nats = text_gen.evaluate(corpus, tmp_path / "model", tmp_path)["test"]["nats_per_char"]
    assert nats < 0.6 * math.log(len(summary["vocabulary"]))
    assert nats == pytest.approx(summary["val_nats_per_char"], abs=0.02)


@pytest.mark.parametrize("amx", [True, False])
def test_auto_precision_is_bfloat16_on_cpus_with_matrix_units_for_topics_that_ask(monkeypatch, amx):
    monkeypatch.setattr(torch_loop, "cpu_has_bf16_units", lambda: amx)
    assert torch_loop.autocast_dtype("auto", "cpu", cudnn_rnn=True, cpu_bf16=True) == (torch.bfloat16 if amx else None)
    assert torch_loop.autocast_dtype("auto", "cpu", cudnn_rnn=True) is None  # the rnn topic, the ratings topics
    assert torch_loop.autocast_dtype("fp32", "cpu", cpu_bf16=True) is None


def test_dropout_keeps_one_mask_per_stream_and_chunk():
    model = char_lm.CharLM(10, 4, 8, 2, "lstm", 0.5).train()
    torch.manual_seed(0)
    dropped = model._drop(torch.ones(6, 20, 8))
    assert torch.equal(dropped, dropped[:, :1].expand(-1, 20, -1))  # the same units dropped at every step
    assert set(dropped.unique().tolist()) == {0.0, 2.0}  # kept units scaled by 1 / (1 - p)
    assert torch.equal(model.eval()._drop(torch.ones(6, 20, 8)), torch.ones(6, 20, 8))


def test_models_saved_with_one_stacked_lstm_still_load(tmp_path):
    """Before each layer became its own module the network held torch's stacked LSTM; its weights
    load into the layered network, which then computes exactly what the stacked one did."""
    torch.manual_seed(0)
    stacked = torch.nn.LSTM(16, 32, 2, batch_first=True)
    layered = char_lm.CharLM(10, 16, 32, 2, "lstm", 0.0).eval()
    saved = {**{k: v for k, v in layered.state_dict().items() if not k.startswith("rnn.")},
             **{f"rnn.{k}": v for k, v in stacked.state_dict().items()}}
    layered.load_state_dict(char_lm.one_module_per_layer(saved))
    x = torch.randint(0, 10, (3, 7))
    expected, _ = stacked(layered.embedding(x))
    assert torch.allclose(layered(x)[0], layered.head(expected), atol=1e-6)


def test_learning_rate_warms_up_then_follows_a_cosine_to_a_tenth():
    params = _params("learning_rate=0.01", "warmup=0.1")
    rates = [text_gen.learning_rate(params, p) for p in (0.0, 0.05, 0.1, 0.55, 1.0, 1.5)]
    assert rates[0] < rates[1] < rates[2] == pytest.approx(0.01)
    assert rates[3] == pytest.approx(0.0055) and rates[4] == rates[5] == pytest.approx(0.001)
    assert text_gen.learning_rate(_params("schedule=constant", "warmup=0"), 0.9) == 0.01


def test_top_p_keeps_only_the_nucleus():
    probabilities = torch.tensor([0.125, 0.5, 0.0625, 0.25, 0.0625], dtype=torch.float64)

    def nucleus(top_p: float) -> list[float]:
        return char_lm.top_p_filter(probabilities, top_p).tolist()

    assert nucleus(0.7) == nucleus(0.75) == [0, 2 / 3, 0, 1 / 3, 0]  # 0.5 + 0.25 reaches p
    assert nucleus(0.76) == [1 / 7, 4 / 7, 0, 2 / 7, 0]  # needs the third most likely as well
    assert nucleus(0.01) == [0, 1, 0, 0, 0]  # always at least the most likely
    assert nucleus(1.0) == probabilities.tolist()
    generator = torch.Generator().manual_seed(0)
    drawn = {char_lm.next_index(probabilities.log(), 1.0, 0.7, generator) for _ in range(200)}
    assert drawn == {1, 3}


@pytest.mark.parametrize("change, match", [
    ("batch_size=4000", "too few for batch_size 4000 x seq_len 32"),
    ("precision=fp16", "precision=fp16 needs CUDA"),
])
def test_bad_settings_are_one_line_errors(corpus, tmp_path, change, match):
    with pytest.raises(DlxError, match=match) as error:
        text_gen.train(corpus, tmp_path / "model", _params(change), 0)
    assert "\n" not in str(error.value) and not (tmp_path / "model").exists()


@pytest.mark.parametrize("bad", ["hidden_size=0", "seq_len=1", "dropout=1", "budget_minutes=-1", "cell=rnn",
                                 "temperatures=-1"])
def test_bad_parameters_are_user_errors(bad):
    with pytest.raises(DlxError, match="text-gen"):
        override(text_gen.Params, [bad], "text-gen")
