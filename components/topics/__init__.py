"""The topics, one module (or package) each, grouped by family:

- ``images``: mnist-mlp, mnist-cnn (Keras)
- ``optimization``: pytorch-gd (PyTorch)
- ``ratings``: cf-gd, cf-regularized (PyTorch), catvar-keras, catvar-split, catvar-homebrew (Keras)
- ``text``: text-vectors, random-embeddings (scikit-learn), word-embeddings (Keras)
- ``sequences``: rnn, text-gen (PyTorch)

Beside them, what families share: ``torch_loop`` (the one resumable PyTorch training loop),
``keras_fit`` (the one Keras fit helper), ``optimizers`` (the hand-written optimisers) and
``predict`` (new texts through any trained text classifier).
Every topic module declares ``Params`` and shows its ``train`` and ``evaluate``; the registry
(components.registry) lists them.
"""
