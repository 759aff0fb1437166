"""`dlx sweep TOPIC --param NAME=V1,V2 --param NAME=LO:HI[:log] …`: a hyperparameter search as one
pipeline (pipelines.sweep), chosen on validation, tested once: locally through kfp.local, or with
--host as one run on a Kubeflow Pipelines server."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from components.errors import DlxError
from dlx.arguments import (add_runs_dir, add_search_arguments, require_train_extra, resolve_search, runs_root,
                           use_tracking)
from dlx.console import open_console

if TYPE_CHECKING:
    from components.job import Job


def cmd_sweep(args: argparse.Namespace) -> None:
    from components import sweep
    from components.evaluate import verdict
    from components.files import read_json, write_json
    from pipelines.local import new_run_dir, run_local

    job, axes = resolve_search(args)
    if args.parallel < 1:
        raise DlxError(f"--parallel {args.parallel}: at least 1 trial must train at a time")
    chosen = sweep.trials(job.topic, job.dataset, axes, args.strategy, args.trials, args.seed, args.fixed)
    trials = [json.dumps(trial["params"]) for trial in chosen]
    if args.host:
        _submit(args, job, trials)
        return
    require_train_extra("sweep")
    use_tracking(args)
    root = runs_root(args)
    run_dir = Path(args.out) if args.out else new_run_dir(root, job.topic, prefix="sweep-")
    print(f"dlx sweep {job.topic.name} on {job.dataset}: {len(chosen)} trials ({args.strategy}), {args.parallel} at a "
          f"time, chosen on validation {job.topic.main_metric} -> {run_dir}", flush=True)
    with open_console() as console:
        metrics = run_local(job, run_dir=run_dir, on_event=console.handle, verbose=args.verbose,
                            trials=trials, parallel=args.parallel)
    table = read_json(run_dir / "choose" / "trials" / sweep.TABLE)
    metrics["sweep"] = {"strategy": args.strategy, "trials": len(chosen), "metric": table["metric"],
                        "best_trial": table["best"], "swept": table["swept"]}
    write_json(run_dir / "metrics.json", metrics)
    print("\n".join(["", *sweep.table_lines(table)]))
    best = table["trials"][table["best"]]
    shown = ", ".join(f"{name}={best['params'][name]}" for name in table["swept"])
    print(f"\nbest trial {table['best']} ({shown}): {table['metric']} {best['validation']:.4f}")
    print(f"  verdict   {verdict(metrics, job.topic.for_dataset(job.dataset))}")
    print(f"  outputs   {run_dir}/  (choose/trials/trials.json, choose/trials/sweep.png, report.html, metrics.json)")


def _submit(args: argparse.Namespace, job: Job, trials: list[str]) -> None:
    """The same sweep pipeline as one run on a Kubeflow Pipelines server."""
    from components.image import DEFAULT_IMAGE
    from dlx.arguments import warn_if_unpublished
    from dlx.cli_kubeflow import DEFAULT_EXPERIMENT, connect, deployment

    if job.data_dir and "://" not in job.data_dir:
        raise DlxError(f"--data-dir {job.data_dir} is a path on this machine, which the cluster's steps cannot see; "
                       "upload it and pass an s3:// URI")
    kubeflow, settings = connect(args)
    image = args.image or settings.kfp_image or DEFAULT_IMAGE
    placed = deployment(args, image)
    warn_if_unpublished(image)
    experiment = args.experiment or settings.kfp_experiment or DEFAULT_EXPERIMENT
    arguments = job.arguments(params=False) | {"trials": trials}
    run_id = kubeflow.submit(job.topic, arguments, experiment=experiment, deployment=placed,
                             run_name=f"dlx-sweep-{job.topic.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                             sweep_parallel=args.parallel)
    print(f"submitted the sweep of {job.topic.name} ({len(trials)} trials, {args.parallel} at a time) to experiment "
          f"{experiment}: run {run_id}", flush=True)
    link = kubeflow.link("runs", run_id)
    if link:
        print(f"  {link}", flush=True)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dlx sweep` to the `dlx` parser."""
    from components.sweep import STRATEGIES
    from dlx.cli_kubeflow import connection_arguments, deployment_arguments

    sweep = sub.add_parser("sweep", help="search hyperparameters locally: train each trial, choose on validation")
    add_search_arguments(sweep, "folder or s3:// prefix holding the data set's files")
    sweep.add_argument("--trials", type=int, default=3,
                       help="random: trials to draw; grid: points per range (default: 3)")
    sweep.add_argument("--strategy", choices=STRATEGIES, default="grid", help="grid (default) or random")
    sweep.add_argument("--parallel", type=int, default=1, help="trials training at once (default: 1)")
    sweep.add_argument("--out", help="sweep directory (default: RUNS_DIR/sweep-<topic>-<timestamp>)")
    add_runs_dir(sweep, "where runs go")
    sweep.add_argument("-v", "--verbose", action="store_true", help="show kfp's full executor output")
    connection_arguments(sweep)
    sweep.add_argument("--experiment", help="with --host: the experiment, created if missing")
    sweep.add_argument("--image", help="with --host: the image of every step")
    deployment_arguments(sweep, placement=False)
    sweep.set_defaults(func=cmd_sweep)
