"""The ratings benchmark's peer: Surprise's SVD++, SVD and BaselineOnly with their default settings,
fitted on MovieLens 100K's u1.base and scored on u1.test.

Runs under its own interpreter (`make bench-env` makes `.venv-bench`): scikit-surprise 1.1.4, the
newest release, is built against NumPy 1.x and does not import beside the NumPy 2 the suite pins.
So this file imports nothing of dlx and prints one JSON object:

    .venv-bench/bin/python benchmarks/surprise_peer.py ../shared/data/movielens-100k --seed 0
"""
from __future__ import annotations

import argparse
import json
import time

from surprise import SVD, BaselineOnly, Dataset, Reader, SVDpp, accuracy
from surprise.model_selection import PredefinedKFold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", help="folder with u1.base and u1.test")
    parser.add_argument("--seed", type=int, default=0, help="random_state of SVD and SVD++")
    args = parser.parse_args()
    folds = [(f"{args.data_dir}/u1.base", f"{args.data_dir}/u1.test")]
    trainset, testset = next(PredefinedKFold().split(Dataset.load_from_folds(folds, Reader("ml-100k"))))
    results = {}
    for name, algorithm in (("SVD++", SVDpp(random_state=args.seed)), ("SVD", SVD(random_state=args.seed)),
                            ("BaselineOnly", BaselineOnly(verbose=False))):
        start = time.perf_counter()
        algorithm.fit(trainset)
        seconds = time.perf_counter() - start
        predictions = algorithm.test(testset)
        results[name] = {"test_rmse": round(accuracy.rmse(predictions, verbose=False), 4),
                         "test_mae": round(accuracy.mae(predictions, verbose=False), 4),
                         "train_seconds": round(seconds, 2)}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
