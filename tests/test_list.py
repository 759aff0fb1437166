"""`dlx list`: a compact line per topic and data set, one of them in full, JSON for scripts, quiet broken pipes."""
import json
import subprocess
import sys

import pytest

from components.data import DATASETS
from components.registry import topics
from dlx.cli import main


def test_compact_listing_has_a_short_line_per_topic_and_data_set(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) <= 40 and max(map(len, lines)) <= 110
    for name in [*topics(), *DATASETS]:
        assert sum(line.split()[:1] == [name] for line in lines) == 1, name
    assert any(line.split()[:3] == ["mnist-mlp", "keras", "digits"] for line in lines)


def test_one_topic_in_full(capsys):
    assert main(["list", "rnn"]) == 0
    out = capsys.readouterr().out
    assert "data sets: sine (default), text-sample" in out
    assert "main metric: mse (lower is better); on text-sample, sentiment-sentences, text-file:PATH: accuracy" in out
    assert "preset for sentiment-sentences: epochs=8" in out
    assert any(line.split()[:2] == ["cell=manual", "manual|lstm|gru"] for line in out.splitlines())
    assert main(["list", "text-gen"]) == 0
    out = capsys.readouterr().out
    assert "data set options for text-file:PATH: layout=plain" in out
    # Each number with its range, as the parser checks it.
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines() if line.startswith("    ")}
    assert rows["dropout=0.3"] == ["float", "[0,", "1)"] and rows["layers=2"][:3] == ["int", ">=", "1"]
    assert rows["learning_rate=0.003"][:3] == ["float", ">", "0"]


def test_one_data_set_in_full(capsys):
    assert main(["list", "movielens-100k"]) == 0
    out = capsys.readouterr().out
    assert "used by: cf-gd, cf-regularized, catvar-keras" in out and "split=random" in out


def test_json_lists_everything_with_types_and_defaults(capsys):
    assert main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listing["topics"]] == list(topics())
    assert [d["name"] for d in listing["datasets"]] == list(DATASETS)
    mlp = listing["topics"][0]
    assert mlp["default_dataset"] == "digits" and mlp["presets"]["digits"]["epochs"] == "30"
    assert {"name": "hidden_units", "type": "int,...", "range": ">= 1", "default": "512,512"}.items() <= \
        next(p for p in mlp["parameters"] if p["name"] == "hidden_units").items()
    assert main(["list", "cf-gd", "--json"]) == 0
    assert [t["name"] for t in json.loads(capsys.readouterr().out)["topics"]] == ["cf-gd"]


def test_an_unknown_name_is_one_line(capsys):
    assert main(["list", "cifar"]) == 2
    assert capsys.readouterr().err == "dlx: error: 'cifar' is neither a topic nor a data set; `dlx list` shows them all\n"


@pytest.mark.parametrize("argv", [["list"], ["list", "--json"], ["list", "rnn"]])
def test_a_closed_pipe_ends_quietly(argv):
    reader = subprocess.Popen([sys.executable, "-c", "import sys; from dlx.cli import main; sys.exit(main(sys.argv[1:]))",
                               *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.close()  # like `dlx list | head -0`: nobody reads
    _, err = reader.communicate(timeout=60)
    assert err == b"" and reader.returncode == 0
