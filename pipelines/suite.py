"""The suite: every chosen topic's own pipeline, side by side in one, ending in a leaderboard.

Each topic runs as a nested pipeline (its dlx-TOPIC pipeline, unchanged) on its default data set
and defaults, with its own CPU, memory and GPU request, so a cluster trains them in parallel and
one recurring run retrains the whole collection. Each evaluate step returns its leaderboard row
(components.leaderboard) as JSON; the summarize step gets them as one JSON array, assembled from
the rows' placeholders, which KFP fills in as text when the step starts.

The suite's parameters are what all topics share: the seed, the champion location (a folder or
s3:// prefix ending in ``/`` with one record per topic, or ``models:/`` for the MLflow registry,
one registered model dlx-TOPIC each) and the margin.

No `from __future__ import annotations`: kfp reads the pipeline's parameter annotations. kfp
itself is imported only to build the pipeline, so the CLI can name and check a suite without it.
"""
from dataclasses import dataclass
from typing import Any

from components.errors import DlxError
from components.registry import Topic, get_topic, topics
from pipelines.deployment import Deployment

NAME = "suite"
"""What `dlx run|compile|submit|schedule create` take in place of a topic for the suite."""


@dataclass(frozen=True)
class Suite:
    """The topics one suite pipeline runs."""

    topics: tuple[Topic, ...]

    @property
    def name(self) -> str:
        return NAME


def choose_topics(names: str | None) -> Suite:
    """The suite of ``names`` (comma-separated topic ids; None or empty: every topic), checked."""
    if not names:
        return Suite(tuple(topics().values()))
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    if not chosen:
        raise DlxError(f"--topics {names!r} names no topic; give topic ids separated by commas (see `dlx list`)")
    repeated = sorted({name for name in chosen if chosen.count(name) > 1})
    if repeated:
        raise DlxError(f"--topics names {', '.join(repeated)} more than once; name each topic once")
    return Suite(tuple(get_topic(name) for name in chosen))


def build_suite(suite: Suite, deployment: Deployment = Deployment()) -> Any:
    """The suite pipeline function: each topic's pipeline with ``deployment`` as it applies to that
    topic (pipelines.build.fit_to), then the leaderboard."""
    from kfp import dsl

    from components.ops import make_ops
    from pipelines.build import build_pipeline, fit_to
    from pipelines.deployment import apply_to_step

    ops = make_ops(deployment.image)
    members = [build_pipeline(topic, fit_to(topic, deployment)[0]) for topic in suite.topics]

    @dsl.pipeline(name="dlx-suite", description="dlx suite: " + ", ".join(t.name for t in suite.topics))
    def pipeline(seed: int = 0, champion: str = "", margin: float = 0.0):
        rows = [member(seed=seed, champion=champion, margin=margin).output for member in members]
        summary = ops.summarize(rows_json="[" + ", ".join(str(row) for row in rows) + "]")
        summary.set_caching_options(False)
        apply_to_step(summary, deployment)

    return pipeline


def task_topics(pipeline: Any) -> dict[str, tuple[str, str]]:
    """Each step of the suite as kfp.local names its directory and console task (the step's
    component name, which kfp makes unique across the whole pipeline: prepare, prepare-2, ...,
    in no order of ours) → (topic, step)."""
    spec = pipeline.pipeline_spec
    found = {}
    for member, task in spec.root.dag.tasks.items():
        if member.startswith("dlx-"):
            for step, inner in spec.components[task.component_ref.name].dag.tasks.items():
                found[inner.component_ref.name.removeprefix("comp-")] = (member.removeprefix("dlx-"), step)
    return found
