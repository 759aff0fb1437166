"""CF throughput and scale: cf-regularized on synthetic ratings sets of 0.1M, 1M and 10M ratings.

    python -m benchmarks.cf_scale                    # the three sizes, 3 epochs each
    python -m benchmarks.cf_scale --sizes 0.1M 1M --epochs 2

Each size is prepared and trained in a process of its own (so its peak resident memory is its
own), with cf-regularized's defaults except ``epochs`` and ``refit=false`` (refitting on train +
validation would train the epochs twice). Reported: ratings per second while training, seconds
per epoch (validation scoring included), seconds to prepare, peak resident memory, final
validation RMSE against the generator's noise floor, and the ratio of each size's seconds per
epoch to the smallest size's, next to the ratio of their ratings (linear cost: the two match).
Run it with nothing else on the machine. Prints a Markdown table and merges the rows into --out
(section cf_scale).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import merge_results

SIZES = {
    "0.1M": {"users": "1000", "items": "500", "density": "0.2"},
    "1M": {"users": "5000", "items": "1000", "density": "0.2"},
    "10M": {"users": "50000", "items": "2000", "density": "0.1"},
}
"""users x items x density = ratings; items stay few enough that every item is well observed."""


def one(size: str, epochs: int) -> dict:
    """Prepare and train one size in this process; its figures."""
    from components import steps
    from components.data import get_dataset
    from components.files import read_json
    from components.params import to_dict
    from components.registry import get_topic

    spec = get_topic("cf-regularized")
    options = SIZES[size]
    with tempfile.TemporaryDirectory(prefix="dlx-cf-scale-") as tmp:
        dataset, model = Path(tmp) / "dataset", Path(tmp) / "model"
        started = time.perf_counter()
        meta = steps.prepare("synthetic-ratings", "", 0, dataset, json.dumps(options))
        prepared = time.perf_counter() - started
        params = to_dict(spec.params_for("synthetic-ratings", [f"epochs={epochs}", "refit=false",
                                                                f"patience={epochs}"]))
        summary = steps.train(spec.name, json.dumps(params), 0, dataset, model)
        history = read_json(model / "history.json")
    ratings = sum(meta["splits"].values())
    return {"topic": f"cf-regularized {size}", "size": size, "ratings": ratings, "train_ratings": meta["splits"]["train"], **options,
            "ratings_per_second": summary["samples_per_second"],
            "seconds_per_epoch": round(summary["train_seconds"] / summary["epochs_run"], 2),
            "prepare_seconds": round(prepared, 1), "epochs": summary["epochs_run"],
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "final_val_rmse": round(history["val_rmse"][-1], 4),
            "noise_floor_rmse": get_dataset("synthetic-ratings").options().noise}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/ratings.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.epochs)))
        return
    rows = []
    for size in args.sizes:
        print(f"== cf-regularized on {size} synthetic ratings ({args.epochs} epochs)", flush=True)
        done = subprocess.run([sys.executable, "-m", "benchmarks.cf_scale", "--one", size, "--epochs",
                               str(args.epochs)], check=True, stdout=subprocess.PIPE, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = rows[0]
    print("\n| ratings | users x items | ratings/s | s/epoch | cost ratio (s/epoch) | ratings ratio | prepare s | "
          "peak RSS MiB | val RMSE (noise floor) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        row["epoch_cost_ratio"] = round(row["seconds_per_epoch"] / base["seconds_per_epoch"], 1)
        row["ratings_ratio"] = round(row["ratings"] / base["ratings"], 1)
        print(f"| {row['ratings']:,} | {row['users']} x {row['items']} | {row['ratings_per_second']:,.0f} | "
              f"{row['seconds_per_epoch']} | {row['epoch_cost_ratio']} | {row['ratings_ratio']} | "
              f"{row['prepare_seconds']} | {row['peak_rss_mib']:,} | {row['final_val_rmse']} ({row['noise_floor_rmse']}) |")
    print(f"\nmerged into {merge_results(args.out, 'cf_scale', rows)}")


if __name__ == "__main__":
    main()
