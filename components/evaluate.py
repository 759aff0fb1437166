"""Evaluation shared by every topic: metrics, baselines, plots, and the run's metrics.json.

A topic's own evaluate() computes its test metrics and baselines; evaluate_run() adds what
every run records (topic, data set, parameters, timings, version) so runs compare.
"""
from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from components import progress
from components.data.artifact import fingerprint_test_split
from components.files import read_json, write_json
from components.params import differences
from components.protocol import metric_label
from components.registry import Topic
from components.report import write_report

VERSION = version("dlx")


def classification_report(y_true: np.ndarray, probabilities: np.ndarray, classes: list) -> dict:
    """Accuracy, log loss, per-class precision/recall/F1 and the confusion matrix."""
    from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support

    labels = list(range(len(classes)))
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, predicted, labels=labels, zero_division=0
    )
    per_class = {
        str(name): {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4), "support": int(s)}
        for name, p, r, f, s in zip(classes, precision, recall, f1, support)
    }
    return {
        "test": {
            "accuracy": round(float((predicted == y_true).mean()), 4),
            "loss": round(float(log_loss(y_true, probabilities, labels=labels)), 4),
        },
        "per_class": per_class,
        "confusion_matrix": {
            "labels": [str(c) for c in classes],
            "matrix": confusion_matrix(y_true, predicted, labels=labels).tolist(),
        },
    }


def random_forest_baseline(arrays: dict[str, np.ndarray], seed: int) -> dict:
    """The seed's habit: a random forest on raw pixels, fitted on the train split only."""
    from sklearn.ensemble import RandomForestClassifier

    progress.phase("fitting the random-forest baseline")
    flat = {k: arrays[k].reshape(len(arrays[k]), -1) for k in ("x_train", "x_test")}
    forest = RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed)
    forest.fit(flat["x_train"], arrays["y_train"])
    return {"accuracy": round(float(forest.score(flat["x_test"], arrays["y_test"])), 4)}


def pyplot() -> Any:
    progress.phase("drawing plots")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> str:
    """Write a matplotlib figure as PNG, free its memory, and return the file name for "plots"."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    return path.name


def plot_learning_curves(history: dict[str, list[float]], path: Path, marks: dict[str, int] | None = None,
                         steps: dict[str, list[float]] | None = None) -> str:
    """One panel per metric, train and validation side by side; returns the file name.

    ``marks``: epochs to mark with a labelled line (early stopping's kept epoch). ``steps``: the
    training loss per step ({"step": [...], "loss": [...]}), drawn instead of the per-epoch loss when
    there are too few epochs for a curve (a run that a time budget stopped early).
    """
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    metrics = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    by_step = bool(steps and steps.get("step")) and len(history.get("loss", [])) < 4
    for ax, name in zip(axes[0], metrics):
        epochs = range(1, len(history[name]) + 1)
        if name == "loss" and by_step:
            ax.plot(steps["step"], steps["loss"], label="train (per step)")
            ax.set(title="loss", xlabel="step")
        else:
            ax.plot(epochs, history[name], marker=".", label="train")
            if f"val_{name}" in history:
                ax.plot(epochs, history[f"val_{name}"], marker=".", label="validation")
            ax.set(title=name, xlabel="epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            for text, epoch in (marks or {}).items():
                ax.axvline(epoch, color="gray", linestyle=":", linewidth=1.2, label=text)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_confusion_matrix(confusion: dict, path: Path, scored_on: str = "test") -> str:
    plt = pyplot()
    matrix = np.asarray(confusion["matrix"])
    labels = confusion["labels"]
    side = 3.5 + 0.35 * len(labels)
    fig, ax = plt.subplots(figsize=(side + 0.5, side))
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=f"confusion matrix ({scored_on})")
    threshold = matrix.max() / 2
    size = max(8, min(18, 60 // max(len(labels), 1)))
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=size,
                color="white" if count > threshold else "black")
    return save_figure(fig, path)


def plot_misclassified(images: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, path: Path, limit: int = 32) -> str:
    """A grid of test images the model got wrong, titled 'true→predicted'."""
    plt = pyplot()
    wrong = np.flatnonzero(y_true != y_pred)[:limit]
    columns = 8
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), wrong):
        ax.imshow(images[index], cmap="gray_r")
        ax.set_title(f"{y_true[index]}→{y_pred[index]}", fontsize=8)
    fig.suptitle(f"misclassified test images ({int((y_true != y_pred).sum())} in all, first {len(wrong)})")
    return save_figure(fig, path)


def _bars(metrics: dict, topic: Topic) -> tuple[dict[str, float], dict[str, float]]:
    """The baselines' main-metric values: (those the lesson must beat, its reference comparisons)."""
    scored = {name: values[topic.main_metric] for name, values in metrics.get("baseline", {}).items()
              if topic.main_metric in values}
    return ({k: v for k, v in scored.items() if k not in topic.references},
            {k: v for k, v in scored.items() if k in topic.references})


def best_baseline(metrics: dict, topic: Topic) -> tuple[str, float] | None:
    """The strongest baseline the topic must beat on its main metric, as (name, value)."""
    topic = topic.for_dataset(metrics.get("dataset", ""))
    bars, references = _bars(metrics, topic)
    scored = bars or references
    if not scored:
        return None
    sign = 1 if topic.higher_is_better else -1
    name = max(scored, key=lambda k: sign * scored[k])
    return name, scored[name]


def judge(metrics: dict, topic: Topic) -> dict:
    """The main metric against the strongest baseline the lesson must beat (beats, by how much) and,
    in words, how close it comes to its reference comparisons (``Topic.references``)."""
    topic = topic.for_dataset(metrics.get("dataset", ""))
    name, sign = topic.main_metric, 1 if topic.higher_is_better else -1
    value = metrics["test"][name]
    label = metric_label(metrics.get("protocol", {}), name)
    found: dict[str, Any] = {"metric": name, "label": label, "value": value}
    words = [f"{label} {value:.4f}"]
    bars, references = _bars(metrics, topic)
    if bars:
        base = max(bars, key=lambda k: sign * bars[k])
        margin = round(sign * (value - bars[base]), 6)
        found |= {"beats": margin > 0, "baseline": base, "baseline_value": bars[base], "margin": margin}
        words.append(f"beats the {base} baseline ({bars[base]:.4f}) by {margin:.4f}" if margin > 0
                     else f"does NOT beat the {base} baseline ({bars[base]:.4f})")
    for base, reference in references.items():
        gap = sign * (value - reference)
        words.append(f"{abs(gap):.4f} {'better than' if gap >= 0 else 'short of'} {base} ({reference:.4f}), "
                     f"{topic.references[base]}")
    found["text"] = words[0] + " " + "; ".join(words[1:]) if len(words) > 1 else words[0]
    return found


def verdict(metrics: dict, topic: Topic) -> str:
    """The run's verdict in words (recorded by the evaluate step; worked out again for older runs)."""
    return (metrics.get("verdict") or judge(metrics, topic))["text"]


def evaluate_run(topic: Topic, dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """Run the topic's evaluation; write metrics.json, the plots and report.html into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = topic.evaluate(dataset_dir, model_dir, out_dir)
    meta = read_json(dataset_dir / "meta.json")
    train = read_json(model_dir / "train.json")
    metrics = {
        "topic": topic.name,
        "dataset": meta["dataset"],
        "data_source": meta["source"],
        "params": read_json(model_dir / "params.json"),
        "seed": train["seed"],
        "protocol": result.pop("protocol", {"kind": "test"}),
        "test": result.pop("test"),
        "baseline": result.pop("baseline"),
        "train_seconds": train["train_seconds"],
        "samples_per_second": train.get("samples_per_second"),
        "dlx_version": VERSION,
        **result,
    }
    metrics["params_changed"] = differences(topic.params_for(meta["dataset"]), metrics["params"])
    metrics["data_inputs"] = meta.get("inputs", {})
    metrics["test_fingerprint"] = fingerprint_test_split(dataset_dir)
    metrics["verdict"] = judge(metrics, topic)
    write_json(out_dir / "metrics.json", metrics)
    progress.phase("writing the report")
    write_report(metrics, out_dir, out_dir / "report.html")
    return metrics
