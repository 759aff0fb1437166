"""`dlx runs` (newest first, --json, fast), run ids wherever a run directory goes, `dlx compare`,
and runs/index.html."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.errors import DlxError
from components.files import write_json
from dlx.cli import main
from pipelines.runs import list_runs, resolve_run, write_index


def fake_run(root: Path, run_id: str, *, finished: str, rmse: float, factors: int = 40) -> Path:
    run = root / run_id
    (run / "train" / "model").mkdir(parents=True)
    write_json(run / "metrics.json", {
        "topic": "cf-regularized", "dataset": "synthetic-ratings", "seed": 0, "run_id": run_id, "finished_at": finished,
        "params": {"factors": factors, "epochs": 15}, "params_changed": {"factors": factors} if factors != 40 else {},
        "test": {"rmse": rmse, "mae": rmse * 0.8}, "baseline": {"bias": {"rmse": 0.78}},
        "train_seconds": 1.5, "wall_seconds": 11.0 + rmse,
        "verdict": {"metric": "rmse", "label": "test RMSE", "value": rmse, "beats": True, "baseline": "bias",
                    "baseline_value": 0.78, "margin": 0.78 - rmse, "text": f"test RMSE {rmse:.4f} beats ..."}})
    write_json(run / "train" / "model" / "history.json", {"rmse": [0.9, 0.5, rmse], "val_rmse": [0.95, 0.6, rmse + 0.01]})
    return run


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    fake_run(root, "cf-regularized-20261201-090000", finished="2026-12-01T09:00:00Z", rmse=0.34)
    fake_run(root, "cf-regularized-20261202-100000", finished="2026-12-02T10:00:00Z", rmse=0.31, factors=8)
    (root / ".cf-regularized-20261202-110000.partial").mkdir()  # an unfinished run is no run
    (root / "cf-regularized-20261202-120000.failed").mkdir()
    return root


def test_runs_are_listed_newest_first_with_date_metric_and_changes(runs, capsys):
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["run", "date", "topic", "dataset"]
    assert [line.split()[0] for line in lines[2:]] == ["cf-regularized-20261202-100000", "cf-regularized-20261201-090000"]
    assert "test RMSE 0.3100" in lines[2] and "bias 0.7800" in lines[2] and "factors=8" in lines[2]
    assert main(["runs", "--json", "--runs-dir", str(runs)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [run["id"] for run in listed] == ["cf-regularized-20261202-100000", "cf-regularized-20261201-090000"]
    assert listed[0]["verdict"]["value"] == 0.31 and listed[0]["params_changed"] == {"factors": 8}


def test_a_hundred_runs_list_in_under_a_second(tmp_path):
    root = tmp_path / "runs"
    for n in range(100):
        fake_run(root, f"cf-regularized-20261201-{n:06d}", finished=f"2026-12-01T{n // 60:02d}:{n % 60:02d}:00Z",
                 rmse=0.3 + n / 1000)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dlx.cli", "runs", "--runs-dir", str(root)], capture_output=True,
                          text=True, timeout=60)
    seconds = time.perf_counter() - started
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 102
    assert seconds < 1.0, f"dlx runs took {seconds:.2f} s for 100 runs"


def test_a_run_id_or_a_unique_prefix_names_a_run(runs):
    assert resolve_run(runs, "cf-regularized-20261201-090000") == runs / "cf-regularized-20261201-090000"
    assert resolve_run(runs, "cf-regularized-20261202-1") == runs / "cf-regularized-20261202-100000"
    assert resolve_run(runs, str(runs / "cf-regularized-20261201-090000")) == runs / "cf-regularized-20261201-090000"
    with pytest.raises(DlxError, match="matches 2 runs"):
        resolve_run(runs, "cf-regularized-2026120")
    with pytest.raises(DlxError, match="no run 'mnist'"):
        resolve_run(runs, "mnist")
    with pytest.raises(DlxError, match="no such run directory"):
        resolve_run(runs, "../elsewhere")


def test_predict_takes_a_run_id(runs, capsys):
    assert main(["predict", "cf-regularized-20261202", "nice", "--runs-dir", str(runs)]) == 2
    assert "is a run of topic cf-regularized, which has no model for `dlx predict`" in capsys.readouterr().err


def test_compare_shows_what_differs_and_overlays_the_curves(runs, tmp_path, capsys):
    out = tmp_path / "compared"
    assert main(["compare", "cf-regularized-20261201", "cf-regularized-20261202-1", "--runs-dir", str(runs),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "parameters that differ:" in text and "factors" in text and "epochs" not in text.split("figures:")[0]
    rows = {line.split()[0]: line.split()[1:] for line in text.split("figures:")[1].splitlines() if line.strip()}
    assert rows["rmse"] == ["0.34", "0.31"] and rows["main"][:2] == ["metric", "test"]
    page = (out / "compare.html").read_text()
    assert "Parameters that differ" in page and "data:image/png;base64," in page and (out / "curves.png").is_file()
    with pytest.raises(SystemExit):
        main(["compare", "--runs-dir", str(runs)])
    assert main(["compare", "cf-regularized-20261201", "--runs-dir", str(runs)]) == 2


def test_index_links_every_run_with_sortable_keys(runs):
    page = write_index(runs).read_text()
    assert page.count('href="cf-regularized-') == 2 and "onclick=\"sortBy(" in page
    assert 'data-key="0.31"' in page and ".partial" not in page
    assert [run.id for run in list_runs(runs)] == ["cf-regularized-20261202-100000", "cf-regularized-20261201-090000"]
