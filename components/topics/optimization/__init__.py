"""Optimisation by hand: gradient descent written out over autograd's gradients (pytorch-gd)."""
