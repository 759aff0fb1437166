"""Every topic's default run, as a newcomer types it (`dlx run TOPIC`), beats with a clear margin the
baselines its lesson is measured against, says so, and finishes in minutes."""
import pytest

from components.registry import topics

CLEAR = 0.01
"""A clear margin: at least 1% of the baseline's value."""
MAX_WALL_SECONDS = 360
"""About 3 minutes on the 2-core development machine, with room for a slower CI machine."""


@pytest.mark.slow
@pytest.mark.parametrize("name", list(topics()))
def test_default_run_beats_its_baselines(name, default_runs):
    run_dir, metrics = default_runs[name]
    verdict = metrics["verdict"]
    assert verdict["beats"], verdict["text"]
    assert verdict["margin"] >= CLEAR * abs(verdict["baseline_value"]), verdict["text"]
    assert "does NOT" not in verdict["text"]
    assert verdict["text"] in (run_dir / "report.html").read_text()
    assert metrics["wall_seconds"] < MAX_WALL_SECONDS


def test_reference_comparisons_are_worded_as_how_close():
    from components.evaluate import judge

    metrics = {"dataset": "text-sample", "protocol": {"kind": "cv", "folds": 5},
               "test": {"accuracy": 0.835}, "baseline": {"majority_class": {"accuracy": 0.51},
                                                         "tfidf_logreg": {"accuracy": 0.8475}}}
    found = judge(metrics, topics()["text-vectors"])
    assert found["text"] == ("cross-validated accuracy (5 folds) 0.8350 beats the majority_class baseline (0.5100) "
                             "by 0.3250; 0.0125 short of tfidf_logreg (0.8475), TF-IDF and logistic regression in "
                             "scikit-learn")
    assert (found["beats"], found["baseline"]) == (True, "majority_class")
    lower = judge({"dataset": "regression", "test": {"rmse": 0.51},
                   "baseline": {"train_mean": {"rmse": 3.2}, "least_squares": {"rmse": 0.5}}}, topics()["pytorch-gd"])
    assert lower["text"] == ("test RMSE 0.5100 beats the train_mean baseline (3.2000) by 2.6900; "
                             "0.0100 short of least_squares (0.5000), the exact optimum")
