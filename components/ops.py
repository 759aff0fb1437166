"""Kubeflow faces of the pipeline steps: map artifact paths to components.steps, log metrics.

The only module in components/ that imports kfp. These are lightweight components: kfp inlines
each function's source, so every import sits inside the body and resolves against the dlx
package installed in the component's image (or, for local runs, the current environment).
No `from __future__ import annotations` here: kfp reads the annotation objects themselves.
"""

from dataclasses import dataclass
from typing import Any, List

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.image import DEFAULT_IMAGE



def prepare(dataset_name: str, data_dir: str, seed: int, dataset: Output[Dataset], dataset_options: str = "{}"):
    from components import steps

    meta = steps.prepare(dataset_name, data_dir, seed, dataset.path, dataset_options)
    dataset.metadata.update({"dataset": meta["dataset"], "splits": meta["splits"]})


def train(topic: str, params_json: str, seed: int, dataset: Input[Dataset], model: Output[Model],
          checkpoint_dir: str = "", run_id: str = ""):
    from components import steps

    # One folder per run on a shared volume (a retried pod resumes), or the folder itself (a local run's own)
    checkpoints = (f"{checkpoint_dir}/{run_id}" if run_id else checkpoint_dir) if checkpoint_dir else None
    summary = steps.train(topic, params_json, seed, dataset.path, model.path, checkpoints)
    model.metadata.update(summary)


def train_nodes(topic: str, params_json: str, seed: int, nodes: int, gpus: int, image: str, cpu: str, memory: str,
                dataset: Input[Dataset], model: Output[Model]):
    from pathlib import Path

    from components import trainjob

    summary = trainjob.run(image=image, topic=topic, params_json=params_json, seed=seed, nodes=nodes, gpus=gpus,
                           dataset_uri=dataset.uri, model_uri=model.uri, model_dir=Path(model.path), cpu=cpu,
                           memory=memory)
    model.metadata.update(summary)


def evaluate(
    topic: str,
    dataset: Input[Dataset],
    model: Input[Model],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    report: Output[HTML],
    interactive: Output[HTML],
    champion: str = "",
    margin: float = 0.0,
    run_id: str = "",
) -> str:
    import json
    import shutil
    from pathlib import Path

    from components import leaderboard, steps
    from components.report import interactive_page

    result = steps.evaluate(topic, dataset.path, model.path, evaluation.path, champion=champion, margin=margin,
                            model_uri=model.uri, run_id=run_id)
    if "promotion" in result:
        metrics.log_metric("promoted", float(result["promotion"]["promoted"]))
    for name, value in result["test"].items():
        metrics.log_metric(name, value)
    for baseline, values in result["baseline"].items():
        for name, value in values.items():
            metrics.log_metric(f"baseline_{baseline}_{name}", value)
    if "confusion_matrix" in result:
        confusion = result["confusion_matrix"]
        classification.log_confusion_matrix(confusion["labels"], confusion["matrix"])
    shutil.copyfile(Path(evaluation.path) / "report.html", report.path)
    Path(interactive.path).write_text(interactive_page(result, Path(evaluation.path)), encoding="utf-8")
    return json.dumps(leaderboard.row({**result, "run_id": run_id}))


def choose(topic: str, models: Input[List[Model]], dataset: Input[Dataset], best: Output[Model],
           trials: Output[Artifact], run_id: str = ""):
    from pathlib import Path

    from components import sweep
    from components.registry import get_topic

    row = sweep.choose(get_topic(topic), [Path(m.path) for m in models], Path(best.path), Path(trials.path),
                       dataset_dir=Path(dataset.path), run_id=run_id)
    best.metadata.update({"trial": row["trial"], "validation": row["validation"]})


def summarize(rows_json: str, board: Output[HTML], table: Output[Artifact], metrics: Output[Metrics]):
    import json
    import shutil
    from pathlib import Path

    from components import leaderboard

    summary = leaderboard.write(json.loads(rows_json), Path(table.path))
    shutil.copyfile(Path(table.path) / "leaderboard.html", board.path)
    for found in summary["rows"]:
        metrics.log_metric(f"{found['topic']}_{found['metric']}", found["value"])
        if found["promoted"] is not None:
            metrics.log_metric(f"{found['topic']}_promoted", float(found["promoted"]))
    metrics.log_metric("topics_beating_baseline", float(summary["beat_baseline"]))


@dataclass(frozen=True)
class Ops:
    prepare: Any
    train: Any
    train_nodes: Any
    evaluate: Any
    choose: Any
    summarize: Any


def make_ops(image: str = DEFAULT_IMAGE) -> Ops:
    """The components on ``image``; kfp itself ships in the image, so no pip at start-up."""
    def component(func: Any) -> Any:
        return dsl.component(func, base_image=image, install_kfp_package=False)

    return Ops(prepare=component(prepare), train=component(train), train_nodes=component(train_nodes),
               evaluate=component(evaluate), choose=component(choose), summarize=component(summarize))
