"""Tokenising text and indexing its words: the first step of every text topic.

The lesson made concrete, in plain Python so that each rule is visible:

- Unicode: text is NFKC-normalised first, so compatibility forms become the ordinary letters
  (full-width ``ＡＢＣ`` → ``ABC``, the ligature ``ﬁ`` → ``fi``) and a word typed two ways is one
  token; the typographic apostrophe ``’`` becomes ``'``. Optionally accents are stripped
  (``café`` → ``cafe``).
- Case: lower-cased by default (``Good`` and ``good`` are one word).
- Punctuation: a token is a run of letters or digits of any script, with inner apostrophes kept
  (``don't``, ``l'été``), so negations survive; everything else separates tokens and is dropped.
- N-grams: with ``ngrams=2`` every pair of neighbouring words is a token too (``"not good"``),
  after all the single words, joined by a space — scikit-learn's order and spelling.
- Word index: the terms kept by frequency cut-offs (``min_count`` documents, ``max_words`` most
  frequent, as scikit-learn's ``min_df`` and ``max_features``), numbered from 2 in order of
  decreasing count; 0 is padding and 1 the out-of-vocabulary token every unknown word maps to.

Used by text-vectors, random-embeddings and word-embeddings (and by any topic reading words).
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

WORD = r"[^\W_]+(?:'[^\W_]+)*"
"""Letters or digits of any script (``\\w`` without the underscore), inner apostrophes kept."""
PAD, OOV = "<pad>", "<oov>"
RESERVED = (PAD, OOV)


@dataclass(frozen=True)
class Tokenizer:
    """Text → tokens. A picklable callable, so scikit-learn vectorisers can take it as ``analyzer``."""

    lowercase: bool = True
    strip_accents: bool = False
    ngrams: int = 1
    pattern: str = WORD

    def __post_init__(self) -> None:
        if self.ngrams < 1:
            raise ValueError("ngrams must be at least 1")

    def words(self, text: str) -> list[str]:
        """The single words of ``text``, normalised as the module docstring says."""
        text = unicodedata.normalize("NFKC", text).replace("\u2019", "'")
        if self.strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        if self.lowercase:
            text = text.lower()
        return re.findall(self.pattern, text)

    def __call__(self, text: str) -> list[str]:
        """Words, then (with ``ngrams`` > 1) each run of 2..ngrams neighbouring words."""
        words = self.words(text)
        tokens = list(words)
        for n in range(2, self.ngrams + 1):
            tokens += [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
        return tokens


@dataclass(frozen=True)
class WordIndex:
    """Terms numbered by decreasing frequency after 0 = padding and 1 = out-of-vocabulary."""

    terms: tuple[str, ...]
    """Every index's term, ``RESERVED`` first."""

    @classmethod
    def fit(cls, documents: Iterable[Sequence[str]], min_count: int = 1, max_words: int = 0) -> WordIndex:
        """Index the tokens of ``documents`` (token lists).

        ``min_count``: keep terms found in at least this many documents. ``max_words``: then keep
        only the most frequent terms by total count (0: all). Ties rank alphabetically.
        """
        if min_count < 1 or max_words < 0:
            raise ValueError("min_count must be at least 1 and max_words at least 0")
        total, in_documents = Counter(), Counter()
        for tokens in documents:
            total.update(tokens)
            in_documents.update(set(tokens))
        kept = sorted((t for t, n in in_documents.items() if n >= min_count), key=lambda t: (-total[t], t))
        return cls(RESERVED + tuple(kept[:max_words] if max_words else kept))

    @property
    def lookup(self) -> dict[str, int]:
        return {term: i for i, term in enumerate(self.terms)}

    def vocabulary(self) -> dict[str, int]:
        """Real terms → column 0..V-1 (no reserved entries): scikit-learn's ``vocabulary`` form."""
        return {term: i for i, term in enumerate(self.terms[len(RESERVED):])}

    def __len__(self) -> int:
        return len(self.terms)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Each token's index; unknown tokens get the OOV index 1."""
        lookup = self.lookup
        return [lookup.get(t, 1) for t in tokens]

    def sequences(self, documents: Iterable[Sequence[str]], length: int) -> np.ndarray:
        """(n, length) int32 indices, cut after ``length`` tokens, padded with 0 at the end."""
        lookup = self.lookup
        rows = [[lookup.get(t, 1) for t in tokens[:length]] for tokens in documents]
        out = np.zeros((len(rows), length), np.int32)
        for i, row in enumerate(rows):
            out[i, :len(row)] = row
        return out
