"""Sampling from a trained text-gen model: `char_lm.generate` and `dlx generate RUN_DIR`."""
import re
import shutil
from pathlib import Path

import pytest
import torch

from components.data import prepare_dataset
from components.data.corpus import builtin_text
from components.files import write_json
from components.params import override
from components.topics.sequences import text_gen
from components.topics.sequences.text_gen import model as char_lm
from dlx.cli import main


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A small model trained for two epochs on 30,000 characters of the built-in corpus."""
    root = tmp_path_factory.mktemp("textgen")
    (root / "docs.txt").write_text(builtin_text()[:30_000], encoding="utf-8")
    prepare_dataset(f"text-file:{root / 'docs.txt'}", root / "dataset", options={"layout": "plain"})
    params = override(text_gen.Params, ["hidden_size=48", "layers=1", "embedding_dim=16", "batch_size=16",
                                        "seq_len=32", "learning_rate=0.01", "epochs=2", "budget_minutes=0",
                                        "sample_length=10"], "text-gen")
    text_gen.train(root / "dataset", root / "model", params, 0)
    return root / "model"


@pytest.fixture(scope="module")
def loaded(model_dir):
    return text_gen.load_model(model_dir)


def test_generates_the_requested_length_from_the_vocabulary(loaded):
    model, vocabulary = loaded
    text = char_lm.generate(model, vocabulary, "The ", 300, 1.0, seed=1)
    assert len(text) == 300 and set(text) <= set(vocabulary)
    assert char_lm.generate(model, vocabulary, "", 0, 1.0) == ""


def test_same_seed_same_text(loaded):
    model, vocabulary = loaded
    first = char_lm.generate(model, vocabulary, "The ", 200, 1.0, top_p=0.9, seed=7)
    assert char_lm.generate(model, vocabulary, "The ", 200, 1.0, top_p=0.9, seed=7) == first
    assert char_lm.generate(model, vocabulary, "The ", 200, 1.0, top_p=0.9, seed=8) != first


def test_temperature_towards_zero_gives_the_greedy_string(loaded):
    model, vocabulary = loaded
    greedy, state, index = [], None, [vocabulary.index(c) for c in "The "]
    with torch.no_grad():
        logits, state = model(torch.tensor([index]))
        for _ in range(100):
            index = int(logits[0, -1].argmax())
            greedy.append(vocabulary[index])
            logits, state = model(torch.tensor([[index]]), state)
    expected = "".join(greedy)
    assert char_lm.generate(model, vocabulary, "The ", 100, 0.0, seed=1) == expected
    assert char_lm.generate(model, vocabulary, "The ", 100, 1e-4, seed=2) == expected
    assert char_lm.generate(model, vocabulary, "The ", 100, 1.0, top_p=1e-9, seed=3) == expected


def test_dlx_generate_streams_from_a_run_dir_or_a_model_dir(model_dir, tmp_path, capsys):
    model, vocabulary = text_gen.load_model(model_dir)
    expected = char_lm.generate(model, vocabulary, "The ", 80, 0.8, top_p=0.9, seed=3)
    run_dir = tmp_path / "text-gen-run"
    shutil.copytree(model_dir, run_dir / "train" / "model")
    write_json(run_dir / "metrics.json", {"topic": "text-gen"})
    for where in (model_dir, run_dir):
        args = ["generate", str(where), "--prompt", "The ", "--length", "80", "--temperature", "0.8",
                "--top-p", "0.9", "--seed", "3"]
        assert main(args) == 0
        assert capsys.readouterr().out == "The " + expected + "\n"


@pytest.mark.parametrize("args, match", [
    (["--prompt", "ROMEO ☃ ü"], r"the prompt has characters outside the model's vocabulary: 'ü' '☃'"),
    (["--top-p", "0"], "0 < top-p <= 1"),
    (["--length", "-1"], "length >= 0"),
])
def test_bad_requests_are_one_line_errors(model_dir, capsys, args, match):
    assert main(["generate", str(model_dir), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert re.search(match, captured.err)


def test_a_run_dir_of_another_topic_or_no_model_is_refused(model_dir, tmp_path, capsys):
    other = tmp_path / "cf-run"
    shutil.copytree(model_dir, other / "train" / "model")
    write_json(other / "metrics.json", {"topic": "cf-gd"})
    assert main(["generate", str(other)]) == 2
    assert "is a run of topic cf-gd, which has no model for `dlx generate`; it takes runs of text-gen" \
        in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["generate", str(tmp_path / "empty")]) == 2
    assert "holds no trained model" in capsys.readouterr().err
