"""Sequences: recurrent networks (rnn, with a cell written by hand) and a character language model (text-gen)."""
