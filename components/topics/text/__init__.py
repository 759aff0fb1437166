"""Text classification: from tokens and a word index to sparse, random and learned word vectors.

``tokenizer`` is the hand-written first step of every text topic, ``common`` what the classifiers
share (folds, the saved model, evaluation, baselines); components.topics.predict reads them back.
"""
