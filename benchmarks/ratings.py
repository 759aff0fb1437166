"""Ratings benchmark: the five ratings topics with their defaults on MovieLens 100K's official u1
split, next to the global-mean and user+item-bias baselines, and on synthetic ratings next to
their noise floor.

The synthetic set is SYNTHETIC (1,000 users x 1,000 items, 20% observed: ~144 training ratings per
user and per item), larger than the data set's default (500 x 300 at 20%, ~48 per user), so that
the target "within 10% of the noise floor" measures the optimiser rather than the shortage of data.

    python -m benchmarks.ratings --data-dir ../shared/data/movielens-100k

Prints Markdown tables and merges the figures into --out (JSON).
"""
from __future__ import annotations

import argparse
import os

from benchmarks.common import merge_results, train_and_evaluate

TOPICS = ["cf-regularized", "cf-gd", "catvar-keras", "catvar-split", "catvar-homebrew"]
SYNTHETIC = {"users": "1000", "items": "1000", "density": "0.2"}


def _row(topic: str, summary: dict, metrics: dict) -> dict:
    return {
        "topic": topic,
        "test_rmse": metrics["test"]["rmse"],
        "test_mae": metrics["test"]["mae"],
        "train_seconds": summary["train_seconds"],
        "bias_rmse": metrics["baseline"]["bias"]["rmse"],
        "global_mean_rmse": metrics["baseline"]["global_mean"]["rmse"],
        "noise_floor_rmse": metrics.get("noise_floor", {}).get("rmse"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/movielens-100k", help="folder with the MovieLens 100K files")
    parser.add_argument("--topics", nargs="+", default=TOPICS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["movielens", "synthetic"], help="run one of the two data sets")
    parser.add_argument("--out", default="benchmarks/results/ratings.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    runs = [("movielens", "movielens-100k", args.data_dir, {"split": "u1"}), ("synthetic", "synthetic-ratings", "", SYNTHETIC)]
    for section, dataset, data_dir, options in runs:
        if args.only not in (None, section):
            continue
        rows = train_and_evaluate(dataset, data_dir, args.topics, args.seed, _row, options)
        print(f"\n{dataset} {options or ''}\n\n| topic | test RMSE | MAE | train s | bias baseline | global mean | noise floor |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            floor = f"{r['noise_floor_rmse']:.4f}" if r["noise_floor_rmse"] is not None else "-"
            print(f"| {r['topic']} | {r['test_rmse']:.4f} | {r['test_mae']:.4f} | {r['train_seconds']:.1f} | "
                  f"{r['bias_rmse']:.4f} | {r['global_mean_rmse']:.4f} | {floor} |")
        print(f"merged into {merge_results(args.out, section, rows, **{f'{section}_options': options})}")


if __name__ == "__main__":
    main()
