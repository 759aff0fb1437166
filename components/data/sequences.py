"""The generated `sine` data set: one noisy periodic signal, split in time, with the noise known.

The clean signal is a sine (``signal=sine``) or a sum of three sines of unrelated periods
(``signal=composite``, the default, which never repeats within the series); Gaussian noise of a
known standard deviation is added. Periods and amplitudes are fixed; the seed draws the phases and
the noise, so a seed always gives the same series. The series is cut in time, never shuffled (a
forecaster must not see the future): first the training part, then validation, then the last
``TEST_FRACTION`` as test. Knowing the noise makes "did it learn" a real test: no predictor of
the next noisy value can beat an MSE of sigma², while predicting the last value (persistence)
pays the noise twice plus the step of the signal.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from components.errors import DlxError
from components.params import help_field

TEST_FRACTION = 0.2
PERIODS = {"sine": (40.0,), "composite": (40.0, 97.0, 15.3)}
"""Periods in time steps of each signal's components."""
AMPLITUDES = {"sine": (1.0,), "composite": (1.0, 0.5, 0.3)}
MIN_LENGTH = 100


@dataclass(frozen=True)
class SineOptions:
    length: int = help_field(4000, "time steps in the whole series (train + validation + test)",
                             at_least=MIN_LENGTH, at_most=10_000_000)
    noise: float = help_field(0.1, "standard deviation of the Gaussian noise added to every value (0: none)",
                              at_least=0, at_most=10)
    signal: Literal["composite", "sine"] = help_field(
        "composite", "one sine of period 40, or the sum of three sines (periods 40, 97 and 15.3)")


def clean_signal(t: np.ndarray, signal: str, phases: list[float]) -> np.ndarray:
    """The noise-free signal at times ``t``."""
    waves = zip(PERIODS[signal], AMPLITUDES[signal], phases)
    return sum(a * np.sin(2 * np.pi * t / p + phase) for p, a, phase in waves)


def load_sine(data_dir: str | None, seed: int, val_fraction: float,
              options: SineOptions | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays ``series_<split>`` (observed, noisy) and ``clean_<split>`` (the truth), float32."""
    options = options or SineOptions()
    rng = np.random.default_rng(seed)
    phases = [round(float(p), 6) for p in rng.uniform(0, 2 * np.pi, len(PERIODS[options.signal]))]
    t = np.arange(options.length, dtype=np.float64)
    clean = clean_signal(t, options.signal, phases)
    series = clean + rng.normal(0.0, options.noise, options.length)
    n_test = round(TEST_FRACTION * options.length)
    n_val = round(val_fraction * options.length)
    n_train = options.length - n_test - n_val
    if n_val < 1 or n_train < n_test:
        raise DlxError(f"val_fraction {val_fraction} leaves {n_train} training steps of {options.length} "
                       f"(test takes the last {n_test}); choose a smaller val_fraction")
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, options.length)}
    arrays = {f"{name}_{split}": values[lo:hi].astype(np.float32)
              for split, (lo, hi) in bounds.items() for name, values in (("series", series), ("clean", clean))}
    meta = {
        "source": f"generated: {options.signal} signal + N(0, {options.noise}²), numpy default_rng(seed)",
        "inputs": {},
        "splits": {split: hi - lo for split, (lo, hi) in bounds.items()},
        "schema": {"series": {"dtype": "float32", "shape": []}, "clean": {"dtype": "float32", "shape": []},
                   "order": "time; the splits follow each other: train, val, test"},
        "truth": {"signal": options.signal, "periods": list(PERIODS[options.signal]),
                  "amplitudes": list(AMPLITUDES[options.signal]), "phases": phases, "noise_sigma": options.noise},
    }
    return arrays, meta
