"""The CLI's one-line errors for things a user can get wrong."""
import pytest

from dlx.cli import main


@pytest.mark.parametrize("argv, message", [
    (["run", "mnist-rnn"], "unknown topic 'mnist-rnn'; valid topics: mnist-mlp, mnist-cnn"),
    (["run", "mnist-mlp", "--dataset", "cifar"], "topic mnist-mlp does not take data set 'cifar'; valid: digits, mnist"),
    (["run", "mnist-mlp", "--param", "epoch=3"], "unknown parameter 'epoch' for mnist-mlp; valid parameters: epochs,"),
    (["run", "mnist-mlp", "--param", "epochs=many"], "bad value 'many' for parameter epochs (int)"),
    (["run", "mnist-cnn", "--param", "backend=jax"], "backend must be one of tensorflow, torch"),
    (["run", "mnist-mlp", "--param", "dropout=1.5"], "dropout must be in [0, 1)"),
    (["run", "mnist-mlp", "--dataset", "mnist", "--data-dir", "/no/such/dir"], "--data-dir /no/such/dir is not a directory"),
    (["run", "mnist-mlp", "--dataset-option", "split=u1"], "dataset 'digits' takes no options; drop split"),
    (["run", "mnist-mlp", "--dataset-option", "split"], "write it as NAME=VALUE"),
    (["runs", "nope"], "unknown topic 'nope'"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert main([*argv, "--runs-dir", str(tmp_path)] if argv[0] in ("run", "runs") else argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("dlx: error: ") and captured.err.count("\n") == 1
    assert message in captured.err
    assert not any(tmp_path.iterdir())


def test_runs_on_an_empty_folder_says_how_to_start(capsys, tmp_path):
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    assert "no runs under" in capsys.readouterr().out
