"""The `dlx` command: parse arguments, call pipelines/ (and later infra/); nothing else."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from components.distributed import check_parallel
from components.errors import DlxError
from components.image import DEFAULT_IMAGE
from components.registry import Topic, get_topic, topics
from dlx import cli_aws, cli_generate, cli_kubeflow, cli_list, cli_predict, cli_runs, cli_sagemaker, cli_sweep
from dlx.arguments import (add_champion_arguments, add_job_arguments, add_runs_dir, add_tracking_argument,
                           check_champion, require_train_extra, resolve_job, runs_root, use_tracking, warn_if_unpublished)
from dlx.console import open_console


def cmd_run(args: argparse.Namespace) -> None:
    from pipelines.local import new_run_dir, run_local

    job = resolve_job(args)
    if args.image and args.runner != "docker":
        raise DlxError("--image goes with --runner docker; add it, or drop --image")
    image = (args.image or DEFAULT_IMAGE) if args.runner == "docker" else None
    if args.nproc < 1:
        raise DlxError(f"--nproc {args.nproc}: the number of training processes must be at least 1")
    if args.nproc > 1:
        check_parallel(job.topic.name, job.topic.framework)
    if image is None:
        require_train_extra("run")
    tracked = use_tracking(args)
    check_champion(args.champion, tracked)
    run_dir = Path(args.out) if args.out else new_run_dir(runs_root(args), job.topic)
    where = f" in {image}" if image else ""
    print(f"dlx run {job.topic.name} on {job.dataset} (seed {args.seed}){where} -> {run_dir}", flush=True)
    with open_console() as console:
        metrics = run_local(job, run_dir=run_dir, champion=args.champion or "", margin=args.margin,
                            verbose=args.verbose, on_event=console.handle, image=image, processes=args.nproc)
    _summary(job.topic, metrics, run_dir)
    if tracked:
        print(f"  mlflow    run {metrics['mlflow_run_id']} at {tracked}")


def _summary(topic: Topic, metrics: dict, run_dir: Path) -> None:
    from components.evaluate import verdict
    from components.protocol import scored_on

    print(f"\n{topic.name} on {metrics['dataset']}: done")
    scores = "  ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items())
    print(f"  {scored_on(metrics.get('protocol', {})):<9} {scores}")
    for name, values in metrics["baseline"].items():
        print(f"  baseline  {name}: " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
    if "noise_floor" in metrics:
        print("  floor     " + "  ".join(f"{k} {v:.4f}" for k, v in metrics["noise_floor"].items()) + "  (the data's noise)")
    print(f"  verdict   {verdict(metrics, topic)}")
    if "promotion" in metrics:
        decision = metrics["promotion"]
        print(f"  champion  {'promoted' if decision['promoted'] else 'not promoted'}: {decision['reason']}")
    print(f"  time      training {metrics['train_seconds']:.1f} s; whole pipeline {metrics['wall_seconds']:.1f} s")
    print(f"  outputs   {run_dir}/  (report.html, metrics.json, pipeline.log; prepare/ train/ evaluate/)")


def cmd_compile(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from dlx.cli_kubeflow import deployment
    from pipelines.build import GPU_FRAMEWORKS
    from pipelines.compile import compile_topic

    chosen = list(topics().values()) if args.topic == "all" else [get_topic(args.topic)]
    warn_if_unpublished(args.image)
    placed = deployment(args, args.image)
    for topic in chosen:
        gpus, nodes = args.gpus, args.nodes
        if args.topic == "all" and gpus > 1 and topic.framework not in GPU_FRAMEWORKS:
            gpus = 0  # all: the GPUs go to the topics that use them
        if args.topic == "all" and topic.framework != "pytorch":
            nodes = 1  # and the nodes to the PyTorch topics
        path = compile_topic(topic, Path(args.output), replace(placed, gpus=gpus, nodes=nodes))
        notes = [note for note, changed in (("no GPUs: a scikit-learn topic", gpus != args.gpus),
                                            ("one pod: not a PyTorch topic", nodes != args.nodes)) if changed]
        print(f"{topic.name}: {path}" + (f"  ({'; '.join(notes)})" if notes else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlx", description="Deep-learning exercises as repeatable batch jobs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cli_list.register(sub)

    run = sub.add_parser("run", help="run a topic's pipeline locally (kfp.local)")
    add_job_arguments(run, "folder or s3://bucket/prefix holding the data set's files")
    run.add_argument("--out", help="run directory (default: RUNS_DIR/<topic>-<timestamp>)")
    add_runs_dir(run, "where runs go")
    add_champion_arguments(run, "path or s3:// URI")
    add_tracking_argument(run)
    run.add_argument("--runner", choices=("subprocess", "docker"), default="subprocess",
                     help="run each step as a subprocess here (default) or in the image (kfp.local's DockerRunner)")
    run.add_argument("--image", help=f"the image --runner docker uses (default: {DEFAULT_IMAGE})")
    run.add_argument("--nproc", type=int, default=1, metavar="N",
                     help="train a PyTorch topic data-parallel in N processes under torchrun (default: 1)")
    run.add_argument("-v", "--verbose", action="store_true", help="show kfp's full executor output")
    run.set_defaults(func=cmd_run)

    comp = sub.add_parser("compile", help="write pipeline YAML for a Kubeflow Pipelines server")
    comp.add_argument("topic", help="topic id, or 'all'")
    comp.add_argument("-o", "--output", default="compiled", help="output folder (default: ./compiled)")
    comp.add_argument("--image", default=DEFAULT_IMAGE, help=f"container image for every step (default: {DEFAULT_IMAGE})")
    cli_kubeflow.deployment_arguments(comp)
    comp.set_defaults(func=cmd_compile)

    for target in (cli_runs, cli_sweep, cli_kubeflow, cli_sagemaker, cli_aws, cli_predict, cli_generate):
        target.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
        sys.stdout.flush()
    except DlxError as exc:
        print(f"dlx: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `dlx list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's own flush stays quiet
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
