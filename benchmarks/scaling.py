"""Data-parallel scaling on this machine: a PyTorch topic's train step in 1 and in 2 processes.

    python -m benchmarks.scaling                      # cf-regularized and text-gen, 1 vs 2 processes
    python -m benchmarks.scaling --processes 1 2 4 --topics text-gen

Each topic trains with its defaults on its default data set (text-gen for --textgen-epochs
epochs), once per process count, under torchrun as `dlx run --nproc N` runs it; the global batch
and the seed are the same, so the final validation figure should be too, and the throughput shows
what splitting each batch across processes buys on these cores. Run it with nothing else on the
machine. Prints a Markdown table and merges the rows into --out (section scaling).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import merge_results

VALIDATION = {"cf-regularized": "val_rmse", "text-gen": "val_loss", "cf-gd": "val_rmse", "rnn": "val_mse",
              "pytorch-gd": "val_mse"}
"""The validation figure each topic's history records."""


def run(topics: list[str], processes: list[int], textgen_epochs: int) -> list[dict]:
    from components import steps
    from components.distributed import NPROC_ENV
    from components.files import read_json
    from components.params import to_dict
    from components.registry import get_topic

    rows = []
    with tempfile.TemporaryDirectory(prefix="dlx-bench-") as tmp:
        for topic in topics:
            spec = get_topic(topic)
            dataset = spec.datasets[0]
            prepared = Path(tmp) / topic / "dataset"
            steps.prepare(dataset, "", 0, prepared)
            params = to_dict(spec.params_for(dataset)) | ({"epochs": textgen_epochs} if topic == "text-gen" else {})
            for count in processes:
                print(f"== {topic} on {dataset}, {count} process(es)", flush=True)
                os.environ[NPROC_ENV] = str(count)
                model = Path(tmp) / topic / f"model-{count}"
                started = time.perf_counter()
                summary = steps.train(topic, json.dumps(params), 0, prepared, model)
                wall = time.perf_counter() - started
                history = read_json(model / "history.json")
                rows.append({"topic": f"{topic} x{count}", "processes": count, "dataset": dataset,
                             "per_second": summary["samples_per_second"], "train_seconds": summary["train_seconds"],
                             "step_wall_seconds": round(wall, 1), "validation": VALIDATION[topic],
                             "final_validation": history[VALIDATION[topic]][-1], "epochs_run": summary["epochs_run"]})
    os.environ.pop(NPROC_ENV, None)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", nargs="+", default=["cf-regularized", "text-gen"])
    parser.add_argument("--processes", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--textgen-epochs", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/scaling.json")
    args = parser.parse_args(argv)
    rows = run(args.topics, args.processes, args.textgen_epochs)
    print("| topic | processes | examples/s (training) | train s | step wall s | final validation |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['topic'].rsplit(' ', 1)[0]} | {row['processes']} | {row['per_second']:,.0f} | "
              f"{row['train_seconds']:.1f} | {row['step_wall_seconds']:.1f} | {row['validation']} "
              f"{row['final_validation']:.4f} |")
    print(f"merged into {merge_results(args.out, 'scaling', rows, cpus=os.cpu_count())}")


if __name__ == "__main__":
    main()
