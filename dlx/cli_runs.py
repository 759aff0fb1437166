"""`dlx runs [TOPIC] [--json]`, `dlx compare RUN RUN...` and `dlx ui`: the local runs, newest first,
side by side, and in MLflow's UI."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from components.errors import DlxError
from dlx.arguments import add_runs_dir, runs_root


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dlx runs` and `dlx compare` to the `dlx` parser."""
    runs = sub.add_parser("runs", help="table of past local runs, newest first")
    runs.add_argument("topic", nargs="?", help="only this topic")
    runs.add_argument("--json", action="store_true", help="the runs as JSON, for scripts")
    runs.add_argument("--prune", action="store_true",
                      help="remove unfinished runs whose process is gone (.partial) and kept failed runs (.failed)")
    add_runs_dir(runs, "where runs are")
    runs.set_defaults(func=cmd_runs)

    compare = sub.add_parser("compare", help="two or more runs side by side: parameters, figures, learning curves")
    compare.add_argument("runs", metavar="RUN", nargs="+", help="a run id (or a unique prefix of one) or run directory")
    compare.add_argument("--out", help="where compare.html and curves.png go (default: RUNS_DIR/compare-<time>)")
    add_runs_dir(compare, "where runs are")
    compare.set_defaults(func=cmd_compare)

    ui = sub.add_parser("ui", help="MLflow's UI over the local runs, on 127.0.0.1 (a SQLite store beside runs/)")
    ui.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default: 5000)")
    add_runs_dir(ui, "where runs are")
    ui.set_defaults(func=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> None:
    """Log the local runs the store lacks, then become MLflow's UI on loopback (until Ctrl-C)."""
    import os
    import socket
    import sys

    from components import tracking
    from pipelines.runs import track_local_runs

    with socket.socket() as probe:  # say it now: the UI would fail after starting
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError as exc:
            raise DlxError(f"port {args.port} on 127.0.0.1 is not free ({exc.strerror}); pass another --port") from None
    root = runs_root(args)
    uri = tracking.use_local_store(root)
    added = track_local_runs(root)
    print(f"{added} new local run(s) added to {root / 'mlflow.db'}; MLflow UI on http://127.0.0.1:{args.port} "
          "(Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                              "--default-artifact-root", (root / "mlartifacts").resolve().as_uri(),
                              "--host", "127.0.0.1", "--port", str(args.port)])


def cmd_runs(args: argparse.Namespace) -> None:
    from pipelines.runs import COLUMNS, format_table, list_runs, runs_json

    root = runs_root(args)
    if args.prune:
        import shutil

        from pipelines.local import stale

        removed = stale(root)
        for path in removed:
            shutil.rmtree(path)
            print(f"removed {path}")
        print(f"{len(removed)} stale run director{'y' if len(removed) == 1 else 'ies'} removed from {root}/")
        return
    if args.topic:
        from components.registry import get_topic

        get_topic(args.topic)
    found = list_runs(root, args.topic)
    if args.json:
        print(runs_json(found))
    elif not found:
        print(f"no runs under {root}/ yet; start one with `dlx run TOPIC`")
    else:
        print(format_table(COLUMNS, [run.row() for run in found]))


def cmd_compare(args: argparse.Namespace) -> None:
    from components.files import read_json
    from pipelines.runs import Run, cell_text, compare, compared_figures, differing_params, format_table, resolve_run

    if len(args.runs) < 2:
        raise DlxError("give two or more runs to compare (run ids or directories; see `dlx runs`)")
    root = runs_root(args)
    runs = []
    for name in args.runs:
        path = resolve_run(root, name)
        if not (path / "metrics.json").is_file():
            raise DlxError(f"{path}: not a complete run (no metrics.json); see `dlx runs`")
        runs.append(Run(path, read_json(path / "metrics.json")))
    header = ("", *(run.id for run in runs))
    params = differing_params(runs)
    print("parameters that differ:" if params else "the runs have the same parameters")
    if params:
        print(format_table(header, [(name, *map(cell_text, values)) for name, values in params.items()]))
    print("\nfigures:")
    print(format_table(header, [(name, *map(cell_text, values)) for name, values in compared_figures(runs).items()]))
    out = Path(args.out) if args.out else root / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"\nlearning curves and tables: {compare(runs, out)}")

