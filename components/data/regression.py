"""The generated regression data set: y = X·w + b + Gaussian noise, with w, b and sigma known.

Knowing the truth makes "did it learn" a real test: the best achievable test MSE is sigma², and
the learned coefficients can be compared with the true ones. Everything comes from one fixed
generator, so every seed is scored on the same test split; the seed only picks the validation
rows out of the rest. Feature scales differ (0.5 to 2), which makes the loss surface an
elongated bowl where momentum visibly beats plain gradient descent.
"""
from __future__ import annotations

import numpy as np

from components.errors import DlxError

GENERATOR_SEED = 0
N_FEATURES = 10
N_TRAIN_VAL = 2000
N_TEST = 1000
NOISE_SIGMA = 0.5
FEATURE_SCALES = np.linspace(0.5, 2.0, N_FEATURES)


def load_regression(data_dir: str | None, seed: int, val_fraction: float) -> tuple[dict[str, np.ndarray], dict]:
    """Fixed last N_TEST rows as the test split; a seeded random ``val_fraction`` of the rest as validation."""
    rng = np.random.default_rng(GENERATOR_SEED)
    weights = rng.normal(0.0, 1.0, N_FEATURES).round(3)
    bias = round(float(rng.normal(0.0, 1.0)), 3)
    x = rng.normal(0.0, 1.0, (N_TRAIN_VAL + N_TEST, N_FEATURES)) * FEATURE_SCALES
    y = x @ weights + bias + rng.normal(0.0, NOISE_SIGMA, len(x))
    n_val = round(val_fraction * N_TRAIN_VAL)
    if not 0 < n_val < N_TRAIN_VAL:
        raise DlxError(f"val_fraction {val_fraction} leaves no rows on one side of the {N_TRAIN_VAL} "
                       "train/validation rows; choose one between 0.01 and 0.99")
    val = np.zeros(N_TRAIN_VAL, dtype=bool)
    val[np.random.default_rng(seed).choice(N_TRAIN_VAL, n_val, replace=False)] = True
    rows = {"train": np.flatnonzero(~val), "val": np.flatnonzero(val), "test": np.arange(N_TRAIN_VAL, len(x))}
    arrays = {f"{xy}_{split}": a[index].astype(np.float32)
              for split, index in rows.items() for xy, a in (("x", x), ("y", y))}
    meta = {
        "source": f"generated: y = X·w + b + N(0, {NOISE_SIGMA}²), numpy default_rng({GENERATOR_SEED})",
        "inputs": {},
        "splits": {split: len(index) for split, index in rows.items()},
        "schema": {"x": {"dtype": "float32", "shape": [N_FEATURES]}, "y": {"dtype": "float32"}},
        "truth": {"weights": weights.tolist(), "bias": bias, "noise_sigma": NOISE_SIGMA},
    }
    return arrays, meta
