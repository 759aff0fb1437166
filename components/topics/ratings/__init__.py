"""Ratings: learning (user, item) -> rating from the observed ratings alone.

Matrix factorisation by hand in PyTorch (cf-gd, cf-regularized: ``factors`` is their shared
model) and embeddings of categorical variables in Keras (catvar-*: ``catvar`` is their shared
network); every one is scored by ``evaluation`` against the same baselines and pictures.
"""
