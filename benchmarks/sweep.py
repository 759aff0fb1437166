"""A `dlx sweep` of cf-regularized on MovieLens 100K's official u1 split, against the defaults.

    python -m benchmarks.sweep --data-dir ../shared/data/movielens-100k

The trials are chosen on the validation split carved from u1.base (the topic's own protocol); the
test split (u1.test) scores the chosen trial once, and the defaults once, so the two test figures
compare a choice made without looking at the test split. Prints the trial table and merges the
figures into --out (section sweep). Run it with nothing else on the machine.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import merge_results

AXES = ["factors=20,40,80", "weight_decay=0.01:0.1:log"]
"""Capacity and its regularisation: the two the defaults were set by hand."""


def main(argv: list[str] | None = None) -> None:
    from components.files import read_json
    from dlx.cli import main as dlx

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/movielens-100k")
    parser.add_argument("--param", action="append", default=None, help=f"sweep axes (default: {' '.join(AXES)})")
    parser.add_argument("--trials", type=int, default=3, help="grid points per range (default: 3)")
    parser.add_argument("--out", default="benchmarks/results/ratings.json")
    args = parser.parse_args(argv)
    data = ["--dataset", "movielens-100k", "--dataset-option", "split=u1", "--data-dir", args.data_dir]
    with tempfile.TemporaryDirectory(prefix="dlx-bench-sweep-") as tmp:
        sweep_dir, default_dir = Path(tmp) / "sweep", Path(tmp) / "defaults"
        axes = [item for axis in (args.param or AXES) for item in ("--param", axis)]
        if dlx(["sweep", "cf-regularized", *data, *axes, "--trials", str(args.trials), "--out", str(sweep_dir)]):
            raise SystemExit("the sweep failed")
        if dlx(["run", "cf-regularized", *data, "--out", str(default_dir)]):
            raise SystemExit("the default run failed")
        swept, defaults = read_json(sweep_dir / "metrics.json"), read_json(default_dir / "metrics.json")
        table = read_json(sweep_dir / "choose" / "trials" / "trials.json")
    best = table["trials"][table["best"]]
    row = {"topic": "cf-regularized u1 sweep", "axes": args.param or AXES, "trials": len(table["trials"]),
           "chosen": {name: best["params"][name] for name in table["swept"]},
           "chosen_val_rmse": round(best["validation"], 4), "chosen_test_rmse": round(swept["test"]["rmse"], 4),
           "defaults_test_rmse": round(defaults["test"]["rmse"], 4),
           "trial_table": [{**{n: t["params"][n] for n in table["swept"]}, "val_rmse": round(t["validation"], 4)}
                           for t in table["trials"]]}
    print(f"\nchosen on validation: {row['chosen']} (val RMSE {row['chosen_val_rmse']}); test RMSE "
          f"{row['chosen_test_rmse']} vs the defaults' {row['defaults_test_rmse']}")
    print(f"merged into {merge_results(args.out, 'sweep', [row])}")


if __name__ == "__main__":
    main()
