"""Arguments shared by the commands that start a job: run, submit, schedule create, sagemaker train."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from components.errors import DlxError
from components.files import read_json

if TYPE_CHECKING:
    from components.job import Job
    from pipelines.suite import Suite


TRAIN_EXTRA_MODULES = ("torch", "tensorflow", "keras", "matplotlib", "bokeh")
"""What pyproject's `train` extra installs, by import name."""


def require_train_extra(command: str) -> None:
    """Training or loading a model on this machine needs the `train` extra; without it, one line saying so."""
    missing = [name for name in TRAIN_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise DlxError(f"`dlx {command}` trains or loads models on this machine, which needs the train extra "
                       f"({', '.join(missing)} not installed); install it: pip install 'dlx[train]'")


def warn_if_unpublished(image: str) -> None:
    from components.image import unpublished_warning

    warning = unpublished_warning(image)
    if warning:
        print(warning, file=sys.stderr, flush=True)


def add_job_arguments(parser: argparse.ArgumentParser, data_dir_help: str, *, suite: bool = False) -> None:
    """A job's flags; with ``suite`` the topic may be `suite` too, with its --topics."""
    parser.add_argument("topic", help="topic id (see `dlx list`)" + (", or suite: every topic's pipeline in one" if suite else ""))
    if suite:
        add_topics_argument(parser)
    parser.add_argument("--dataset", help="data set name (default: the topic's offline one)")
    parser.add_argument("--dataset-option", action="append", default=[], metavar="NAME=VALUE",
                        help="a data set option, e.g. split=u1 (repeatable; see `dlx list`)")
    parser.add_argument("--data-dir", help=data_dir_help)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a hyperparameter (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the validation split, initialisation and shuffling")


def add_topics_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topics", metavar="A,B,...", help="the topics `suite` runs, separated by commas "
                                                             "(default: every topic)")


def resolve_suite(args: argparse.Namespace) -> Suite:
    """The suite the flags choose; a flag that sets one topic's data or parameters is refused."""
    from pipelines.suite import choose_topics

    given = [flag for flag, name in (("--dataset", "dataset"), ("--dataset-option", "dataset_option"),
                                     ("--data-dir", "data_dir"), ("--param", "param")) if getattr(args, name, None)]
    if given:
        raise DlxError(f"{', '.join(given)} cannot go with suite, which runs every topic on its default data set with "
                       "its defaults; drop them, or run the topic on its own")
    return choose_topics(args.topics)


def check_no_topics(args: argparse.Namespace) -> None:
    if getattr(args, "topics", None):
        raise DlxError(f"--topics chooses the topics of suite; drop it, or give suite in place of {args.topic}")


def suite_champion(champion: str | None) -> str:
    """The suite's champion location: a folder or prefix (one record per topic, so it ends in
    ``/``), or the bare ``models:/`` (the registered model dlx-TOPIC for each topic)."""
    from components.model_registry import REGISTRY_PREFIX

    if not champion:
        return ""
    if champion.startswith(REGISTRY_PREFIX):
        if champion != REGISTRY_PREFIX:
            raise DlxError(f"--champion {champion} names one registered model, but a suite promotes each topic "
                           f"against its own; pass --champion {REGISTRY_PREFIX} (dlx-TOPIC for each topic)")
        return champion
    return champion if champion.endswith("/") else champion + "/"


def add_tracking_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow tracking server (or sqlite:///FILE) to log the run to "
                                               "(default: $MLFLOW_TRACKING_URI or [mlflow] in dlx.toml)")


def use_tracking(args: argparse.Namespace) -> str | None:
    """The tracking URI the flag or the settings give, checked and exported for the steps; None: untracked."""
    from components import tracking
    from infra.config import load_settings

    settings = load_settings()
    uri = getattr(args, "tracking_uri", None) or settings.tracking_uri
    if not uri:
        return None
    tracking.check_server(uri)
    os.environ[tracking.URI_ENV] = uri
    if settings.tracking_experiment:
        os.environ[tracking.EXPERIMENT_ENV] = settings.tracking_experiment
    return uri


def check_champion(champion: str | None, tracking_uri: str | None) -> None:
    """A registry champion (models:/NAME) needs tracking; say so before any work."""
    from components.model_registry import REGISTRY_PREFIX

    if champion and champion.startswith(REGISTRY_PREFIX) and not tracking_uri:
        raise DlxError(f"--champion {champion} promotes through the MLflow registry, which needs a tracking server: "
                       "pass --tracking-uri (or set MLFLOW_TRACKING_URI), or give a champion record path")


def add_search_arguments(parser: argparse.ArgumentParser, data_dir_help: str) -> None:
    """A hyperparameter search's flags (`dlx sweep`, `dlx sagemaker tune`): the job and its axes."""
    parser.add_argument("topic", help="topic id (see `dlx list`)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2|NAME=LO:HI[:log]",
                        help="a searched parameter: values to try, or a range (repeatable)")
    parser.add_argument("--fix", dest="fixed", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter held fixed for every trial (repeatable)")
    parser.add_argument("--dataset", help="data set name (default: the topic's offline one)")
    parser.add_argument("--dataset-option", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--data-dir", help=data_dir_help)
    parser.add_argument("--seed", type=int, default=0, help="seed of every trial and of the search")


def resolve_search(args: argparse.Namespace) -> tuple[Job, list]:
    """The job every trial starts from and the search axes, checked."""
    from components.job import Job
    from components.sweep import parse_axis

    axes = [parse_axis(text) for text in args.param]
    job = Job.create(args.topic, args.dataset, options=args.dataset_option, params=args.fixed, seed=args.seed,
                     data_dir=args.data_dir or "")
    return job, axes


def add_champion_arguments(parser: argparse.ArgumentParser, where: str) -> None:
    parser.add_argument("--champion", help=f"champion record ({where}), or models:/NAME for the MLflow registry "
                                           "(with tracking): promote the model only if it beats the champion")
    parser.add_argument("--margin", type=float, default=0.0,
                        help="how much better the main metric must be to replace the champion (default: 0)")


def resolve_job(args: argparse.Namespace, *, local_data: bool = True) -> Job:
    """The job the flags describe, checked before any work starts. ``local_data``: the data dir is
    read on this machine, so a local path must exist."""
    from components.job import Job

    job = Job.create(args.topic, args.dataset, options=args.dataset_option, params=args.param, seed=args.seed,
                     data_dir=args.data_dir or "")
    if local_data and args.data_dir and "://" not in args.data_dir and not Path(args.data_dir).is_dir():
        raise DlxError(f"--data-dir {args.data_dir} is not a directory; "
                       f"pass a folder holding the {job.dataset} files, or an s3:// URI")
    return job


def add_runs_dir(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--runs-dir", help=f"{what} (default: $DLX_RUNS_DIR or ./runs)")


def runs_root(args: argparse.Namespace) -> Path:
    return Path(args.runs_dir or os.environ.get("DLX_RUNS_DIR", "runs"))


MODEL_IN_RUN = Path("train") / "model"
"""Where `dlx run` (pipelines.local) leaves the train step's model in a run directory."""


def run_model_dir(args: argparse.Namespace, *, command: str, marker: str, takes: tuple[str, ...]) -> Path:
    """The model of the run ``args.run`` names (a run id, a unique prefix of one, or a directory): its
    train/model/, or the directory itself when it holds ``marker``; a missing or incomplete run, or a
    run of a topic not in ``takes``, is a DlxError."""
    from components import model_files
    from pipelines.runs import resolve_run

    run_dir = resolve_run(runs_root(args), args.run)
    metrics = run_dir / "metrics.json"
    topic = read_json(metrics).get("topic", "?") if metrics.is_file() else None
    if topic is not None and topic not in takes:
        raise DlxError(f"{run_dir} is a run of topic {topic}, which has no model for `dlx {command}`; "
                       f"it takes runs of {', '.join(takes)}")
    for candidate in (run_dir, run_dir / MODEL_IN_RUN):
        if (candidate / marker).is_file():
            model_files.verify(candidate)
            return candidate
    raise DlxError(f"{run_dir}: not a complete dlx run directory, it holds no trained model ({marker} is neither "
                   f"there nor in {MODEL_IN_RUN}/); pass the directory `dlx run` printed (see `dlx runs`)")
