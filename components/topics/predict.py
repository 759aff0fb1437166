"""Class probabilities of new texts from any trained text classifier (`dlx predict`), whichever family.

A text model dir names its format in text_model.json (components.topics.text.common): "sklearn"
(a scikit-learn pipeline from raw texts), "keras" (a network over word-index sequences) or "torch"
(the rnn topic's network, in the sequences family); this module reads each.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from components.files import read_json
from components.topics.text.common import load_sklearn, load_vocabulary, probabilities, read_model_info


def predict(model_dir: str | Path, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(label names, (len(texts), n classes) probabilities) of a trained text model for new texts."""
    model_dir = Path(model_dir)
    info = read_model_info(model_dir)
    texts = [str(t) for t in texts]
    if info["format"] == "sklearn":
        found = load_sklearn(model_dir).predict_proba(texts)
    elif info["format"] == "torch":
        from components.topics.sequences import rnn

        found = rnn.predict_proba(model_dir, texts)
    else:
        from components.topics.keras_fit import import_keras

        keras = import_keras(read_json(model_dir / "params.json")["backend"])
        tokenize, index, length = load_vocabulary(model_dir / "vocabulary.json")
        model = keras.saving.load_model(model_dir / "model.keras")
        found = probabilities(keras, model, index.sequences([tokenize(t) for t in texts], length))
    return info["labels"], np.asarray(found, dtype=np.float64)
