"""The `dlx` command: parse arguments, call pipelines/ (and later infra/); nothing else."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from components.distributed import check_parallel
from components.errors import DlxError, os_error_line
from components.image import DEFAULT_IMAGE
from components.registry import Topic, get_topic, topics
from dlx import cli_aws, cli_generate, cli_kubeflow, cli_list, cli_predict, cli_runs, cli_sagemaker, cli_sweep
from dlx.arguments import (add_champion_arguments, add_job_arguments, add_runs_dir, add_topics_argument,
                           add_tracking_argument, check_champion, check_no_topics, require_train_extra, resolve_job,
                           resolve_suite, runs_root, suite_champion, use_tracking, warn_if_unpublished)
from dlx.console import open_console
from pipelines.suite import NAME as SUITE


def cmd_run(args: argparse.Namespace) -> None:
    from pipelines.local import new_run_dir, run_local

    if args.topic == SUITE:
        _run_suite(args)
        return
    check_no_topics(args)
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


def cmd_resume(args: argparse.Namespace) -> None:
    from pipelines.local import resumable, run_local

    run_dir = Path(args.run) if "/" in args.run else runs_root(args) / args.run
    job, champion, margin, processes = resumable(run_dir)
    require_train_extra("resume")
    print(f"dlx resume {run_dir.name}: {job.topic.name} on {job.dataset} (seed {job.seed}), training from its last "
          "saved epoch", flush=True)
    with open_console() as console:
        metrics = run_local(job, run_dir=run_dir, champion=champion, margin=margin, verbose=args.verbose,
                            on_event=console.handle, processes=processes, resume=True)
    _summary(job.topic, metrics, run_dir)


def _run_suite(args: argparse.Namespace) -> None:
    from pipelines.local import new_run_dir, run_suite_local

    suite = resolve_suite(args)
    refused = [flag for flag, given in (("--runner docker", args.runner == "docker"), ("--image", args.image),
                                        ("--nproc", args.nproc != 1)) if given]
    if refused:
        raise DlxError(f"{', '.join(refused)} cannot go with a local suite run, which runs each step as a subprocess "
                       "here; drop them (on a cluster: dlx submit suite)")
    require_train_extra("run")
    tracked = use_tracking(args)
    champion = suite_champion(args.champion)
    check_champion(champion, tracked)
    run_dir = Path(args.out) if args.out else new_run_dir(runs_root(args), suite)
    print(f"dlx run suite: {', '.join(t.name for t in suite.topics)} (seed {args.seed}) -> {run_dir}", flush=True)
    with open_console() as console:
        board = run_suite_local(suite, run_dir=run_dir, seed=args.seed, champion=champion, margin=args.margin,
                                verbose=args.verbose, on_event=console.handle)
    _board_summary(board, run_dir)


def _board_summary(board: dict, run_dir: Path) -> None:
    from components.leaderboard import outcome, promotion
    from pipelines.runs import format_table

    print(f"\nsuite: {board['beat_baseline']} of {board['topics']} topics beat their baseline; "
          f"{board['promoted']} promoted\n")
    rows = [(r["topic"], r["dataset"], f"{r['label']} {r['value']:.4f}", r["baseline"] or "-",
             "-" if r["baseline_value"] is None else f"{r['baseline_value']:.4f}", outcome(r), promotion(r))
            for r in board["rows"]]
    print(format_table(("topic", "data set", "main metric", "baseline", "baseline value", "verdict", "champion"), rows))
    print(f"\n  outputs   {run_dir}/  (leaderboard.html, leaderboard.json, pipeline.log; a folder per topic)")


def cmd_compile(args: argparse.Namespace) -> None:
    from dlx.cli_kubeflow import deployment
    from pipelines.build import fit_to
    from pipelines.compile import compile_suite, compile_topic

    suite = resolve_suite(args) if args.topic == SUITE else None
    if suite is None:
        check_no_topics(args)
        chosen = list(topics().values()) if args.topic == "all" else [get_topic(args.topic)]
    placed = deployment(args, args.image)
    warn_if_unpublished(args.image)
    if suite:
        print(f"suite ({', '.join(t.name for t in suite.topics)}): {compile_suite(suite, Path(args.output), placed)}")
        return
    for topic in chosen:
        fitted, notes = fit_to(topic, placed) if args.topic == "all" else (placed, [])
        path = compile_topic(topic, Path(args.output), fitted)
        print(f"{topic.name}: {path}" + (f"  ({'; '.join(notes)})" if notes else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlx", description="Deep-learning exercises as repeatable batch jobs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    cli_list.register(sub)

    run = sub.add_parser("run", help="run a topic's pipeline, or the suite, locally (kfp.local)")
    add_job_arguments(run, "folder or s3://bucket/prefix holding the data set's files", suite=True)
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

    resume = sub.add_parser("resume", help="continue a local run whose process was killed, from its last saved epoch")
    resume.add_argument("run", metavar="RUN", help="the run's id (its directory's name) or directory")
    add_runs_dir(resume, "where runs are")
    resume.add_argument("-v", "--verbose", action="store_true", help="show kfp's full executor output")
    resume.set_defaults(func=cmd_resume)

    comp = sub.add_parser("compile", help="write pipeline YAML for a Kubeflow Pipelines server")
    comp.add_argument("topic", help="topic id, all (a file per topic), or suite (one pipeline of them all)")
    add_topics_argument(comp)
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
    except OSError as exc:  # the disk or the permissions refused; whatever was being written is not published
        print(f"dlx: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
