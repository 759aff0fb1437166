"""The CLI's one-line errors for things a user can get wrong."""
import pytest

from dlx.cli import main


@pytest.mark.parametrize("argv, message", [
    (["run", "mnist-rnn"], "unknown topic 'mnist-rnn'; valid topics: mnist-mlp, mnist-cnn"),
    (["run", "mnist-mlp", "--dataset", "cifar"], "topic mnist-mlp does not take data set 'cifar'; valid: digits, mnist"),
    (["run", "mnist-mlp", "--param", "epoch=3"], "unknown parameter 'epoch' for mnist-mlp; valid parameters: epochs,"),
    (["run", "mnist-mlp", "--param", "epochs=many"], "bad value 'many' for parameter epochs (int)"),
    (["run", "mnist-cnn", "--param", "backend=jax"], "backend must be one of tensorflow, torch"),
    (["run", "mnist-mlp", "--param", "dropout=1.5"],
     "bad value 1.5 for parameter dropout of mnist-mlp: must be [0, 1); see `dlx list` for every parameter's range"),
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


def test_operating_system_refusals_are_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    """A path through a file, a full disk: one line with the path and the fix, and no output that looks complete."""
    import errno

    import kfp.compiler

    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("")
    for argv in (["compile", "mnist-mlp", "-o", str(in_the_way / "out")], ["run", "pytorch-gd", "--out", str(in_the_way / "run")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"dlx: error: {in_the_way}") and "choose another path" in err, err

    def full(self, pipeline, package_path, **kwargs):
        with open(package_path, "w") as out:
            out.write("# half a spec")
        raise OSError(errno.ENOSPC, "No space left on device", package_path)

    monkeypatch.setattr(kfp.compiler.Compiler, "compile", full)
    out = tmp_path / "compiled"
    assert main(["compile", "mnist-mlp", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device; free some space there" in err and "Traceback" not in err
    assert list(out.iterdir()) == []  # neither dlx-mnist-mlp.yaml nor its partial
