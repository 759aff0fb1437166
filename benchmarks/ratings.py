"""Ratings benchmark: the five ratings topics with their defaults on MovieLens 100K's official u1
split, next to the global-mean and user+item-bias baselines, and on synthetic ratings next to
their noise floor; on u1, beside Surprise's SVD++, SVD and BaselineOnly fitted in the same run
(benchmarks/surprise_peer.py, under --peer-python: `make bench-env` makes .venv-bench).

The synthetic set is SYNTHETIC (1,000 users x 1,000 items, 20% observed: ~144 training ratings per
user and per item), larger than the data set's default (500 x 300 at 20%, ~48 per user), so that
the target "within 10% of the noise floor" measures the optimiser rather than the shortage of data.

    python -m benchmarks.ratings --data-dir ../shared/data/movielens-100k

Prints Markdown tables and merges the figures into --out (JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.common import merge_results, peak_memory_gib, seed_suffix, train_and_evaluate

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


def surprise_peers(python: str, data_dir: str, seed: int) -> dict:
    """Surprise's SVD++, SVD and BaselineOnly on u1 (defaults), fitted by ``python`` in a process of its own."""
    script = Path(__file__).with_name("surprise_peer.py")
    done = subprocess.run([python, str(script), data_dir, "--seed", str(seed)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        sys.exit(f"the Surprise peer failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
    return json.loads(done.stdout)


def _print_peers(peers: dict, rows: list[dict]) -> None:
    print("\n| Surprise (defaults) | u1 test RMSE | MAE | train s |\n| --- | --- | --- | --- |")
    for name in ("SVD++", "SVD", "BaselineOnly"):
        print(f"| {name} | {peers[name]['test_rmse']:.4f} | {peers[name]['test_mae']:.4f} | "
              f"{peers[name]['train_seconds']:.1f} |")
    for r in rows:
        if r["topic"] == "cf-regularized":
            print(f"\ncf-regularized RMSE {r['test_rmse']:.4f} vs SVD++ {peers['SVD++']['test_rmse']:.4f}; training time "
                  f"{r['train_seconds']:.1f} s vs {peers['SVD++']['train_seconds']:.1f} s "
                  f"(ratio {r['train_seconds'] / peers['SVD++']['train_seconds']:.2f})")


def cost_curve(data_dir: str, seed: int, settings: list[str]) -> list[dict]:
    """cf-regularized on u1 once per setting (NAME=VALUE pairs joined by commas, over the defaults):
    its u1 test RMSE against its training seconds, the quality-for-cost curve."""
    import tempfile

    from components import steps
    from components.params import override, to_dict
    from components.registry import get_topic

    topic, rows = get_topic("cf-regularized"), []
    with tempfile.TemporaryDirectory(prefix="dlx-bench-") as tmp:
        prepared = Path(tmp) / "dataset"
        steps.prepare("movielens-100k", data_dir, seed, prepared, json.dumps({"split": "u1"}))
        for n, setting in enumerate(settings):
            params = to_dict(override(topic.params, [pair for pair in setting.split(",") if pair], topic.name))
            summary = steps.train(topic.name, json.dumps(params), seed, prepared, Path(tmp) / f"m{n}")
            metrics = steps.evaluate(topic.name, prepared, Path(tmp) / f"m{n}", Path(tmp) / f"e{n}")
            rows.append({"topic": setting or "defaults", "test_rmse": metrics["test"]["rmse"],
                         "train_seconds": summary["train_seconds"], "epochs": summary["epochs_run"]})
            print(f"| {rows[-1]['topic']} | {rows[-1]['test_rmse']:.4f} | {rows[-1]['train_seconds']:.1f} |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/movielens-100k", help="folder with the MovieLens 100K files")
    parser.add_argument("--topics", nargs="+", default=TOPICS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="one run per seed (sections _seed_N past 0)")
    parser.add_argument("--only", choices=["movielens", "synthetic"], help="run one of the two data sets")
    parser.add_argument("--peer-python", default=".venv-bench/bin/python",
                        help="interpreter with scikit-surprise for the u1 peers")
    parser.add_argument("--no-peer", action="store_true", help="skip the Surprise peers")
    parser.add_argument("--curve", nargs="+", metavar="NAME=VALUE,...",
                        help="instead: cf-regularized on u1 at each setting (over the defaults; '' for them), "
                             "test RMSE against training time")
    parser.add_argument("--out", default="benchmarks/results/ratings.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    if args.curve:
        for seed in args.seeds:
            print(f"\ncf-regularized on u1, seed {seed}\n\n| setting | u1 test RMSE | train s |\n| --- | --- | --- |")
            rows = cost_curve(args.data_dir, seed, args.curve)
            print(f"merged into {merge_results(args.out, 'cf_curve' + seed_suffix(seed), rows)}")
        return
    runs = [("movielens", "movielens-100k", args.data_dir, {"split": "u1"}), ("synthetic", "synthetic-ratings", "", SYNTHETIC)]
    if args.only in (None, "movielens") and not args.no_peer and not Path(args.peer_python).is_file():
        sys.exit(f"no Surprise environment at {args.peer_python}; run `make bench-env` (or pass --peer-python, "
                 "or --no-peer)")  # before any training, not after it
    for seed in args.seeds:
        suffix = seed_suffix(seed)
        for section, dataset, data_dir, options in runs:
            if args.only not in (None, section):
                continue
            rows = train_and_evaluate(dataset, data_dir, args.topics, seed, _row, options)
            print(f"\n{dataset} {options or ''}, seed {seed}\n\n| topic | test RMSE | MAE | train s | bias baseline "
                  "| global mean | noise floor |\n| --- | --- | --- | --- | --- | --- | --- |")
            for r in rows:
                floor = f"{r['noise_floor_rmse']:.4f}" if r["noise_floor_rmse"] is not None else "-"
                print(f"| {r['topic']} | {r['test_rmse']:.4f} | {r['test_mae']:.4f} | {r['train_seconds']:.1f} | "
                      f"{r['bias_rmse']:.4f} | {r['global_mean_rmse']:.4f} | {floor} |")
            extra: dict = {f"{section}_options": options}
            if section == "movielens" and not args.no_peer:
                extra[f"surprise{suffix}"] = peers = surprise_peers(args.peer_python, args.data_dir, seed)
                _print_peers(peers, rows)
            extra[f"{section}{suffix}_peak_memory_gib"] = peak_memory_gib()
            print(f"merged into {merge_results(args.out, section + suffix, rows, **extra)}")


if __name__ == "__main__":
    main()
